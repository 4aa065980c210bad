/**
 * Text that is hard to cut into pieces: JSON escapes ('"', '\', control
 * characters), multi-byte UTF-8, surrogate pairs and a lone surrogate, so
 * that a piece boundary can fall inside any of them.
 */
const ALPHABET = ['a', '"', '\\', '\n', '\t', '\u0001', 'é', '€', '😀', 'z', '\u2028', '{', '}'];

/** `chars` characters (UTF-16 units, give or take one for a pair), the same for every call with the same length. */
export function spreadValue(chars: number): string {
  let out = '';
  for (let i = 0; out.length < chars; i++) out += ALPHABET[(i * 7 + (i >> 3)) % ALPHABET.length];
  return `${out}\ud800 lone`;
}
