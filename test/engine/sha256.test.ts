/**
 * The JavaScript sha256 (src/engine/sha256.ts) that hashes a cold process's
 * first records must give node:crypto's digest for every text, or a chain
 * written by a hook fork would not verify: block boundaries, multi-byte
 * UTF-8, surrogate pairs and lone surrogates, seeded random texts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import test from 'ava';
import { sha256 } from '../../src/engine/sha256.js';

const native = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const ours = (text: string): string => Buffer.from(sha256(text)).toString('hex');

/** A small seeded generator (mulberry32), so a failure names a text that can be made again. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

test('the digests of FIPS 180-4\'s examples and of the empty text', (t) => {
  t.is(ours(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.is(ours('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.is(ours('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
});

test('every length from 0 to 300 bytes (each padding case around the 55, 56 and 64 byte boundaries) gives node:crypto\'s digest', (t) => {
  for (let n = 0; n <= 300; n++) {
    const text = 'x'.repeat(n);
    if (ours(text) !== native(text)) t.fail(`length ${n}`);
  }
  t.pass();
});

test('seeded random texts of ASCII, two-, three- and four-byte characters and lone surrogates give node:crypto\'s digest', (t) => {
  const pools = ['a', '~', '"', '\\', '\n', 'é', 'ß', '€', '中', '😀', '\ud800', '\udfff'];
  for (const seed of [1, 42, 1337, 20260101]) {
    const random = generator(seed);
    for (let i = 0; i < 200; i++) {
      const length = Math.floor(random() * 400);
      let text = '';
      for (let j = 0; j < length; j++) text += pools[Math.floor(random() * pools.length)];
      if (ours(text) !== native(text)) t.fail(`seed ${seed}, text ${i}: ${JSON.stringify(text)}`);
    }
  }
  t.pass();
});

test('a text of several hundred KiB (many blocks, a length over 2^16 bits) gives node:crypto\'s digest', (t) => {
  const text = JSON.stringify({ p: 'ü'.repeat(200_000), seq: 1 });
  t.is(ours(text), native(text));
});

test('a cold process hashes its first records without node:crypto, loads it past the budget, and the chain hashes are node:crypto\'s either way', (t) => {
  const digest = new URL('../../src/engine/record-digest.js', import.meta.url).pathname;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    const { sha256Text } = await import(${JSON.stringify(digest)});
    const loaded = () => process.moduleLoadList.includes('NativeModule crypto');
    const texts = Array.from({ length: 40 }, (_, i) => JSON.stringify({ p: { k: 'key-' + i, v: 'é'.repeat(i * 3) }, seq: i }));
    const steps = texts.map((text) => ({ text, hex: sha256Text(text, 'hex'), b64: sha256Text(text, 'base64url'), crypto: loaded() }));
    const { createHash } = process.getBuiltinModule('node:crypto');
    const wrong = steps.filter((s) => s.hex !== createHash('sha256').update(s.text).digest('hex') || s.b64 !== createHash('sha256').update(s.text).digest('base64url')).length;
    console.log(JSON.stringify({ wrong, firstWithCrypto: steps.findIndex((s) => s.crypto) }));
  `], { encoding: 'utf8' });
  const { wrong, firstWithCrypto } = JSON.parse(out) as { wrong: number; firstWithCrypto: number };
  t.is(wrong, 0);
  t.true(firstWithCrypto > 0, 'the first records were hashed without node:crypto');
  t.true(firstWithCrypto < 40, 'past the budget node:crypto is loaded');
});
