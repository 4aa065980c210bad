/**
 * The journal's canonical JSON: sorted keys, no spaces
 * (fast-json-stable-stringify), the form chain hashes are computed over and
 * snapshots are written in, so a verifier rebuilds it from a parsed line.
 *
 * Imported statically, not on first use like lazy.ts's modules: the bundle
 * (build/dist, what the package entries load) inlines this small CommonJS
 * package, so a short-lived process that writes one record pays neither
 * Node's CommonJS loader nor a package lookup (about 2.5 ms cold). The
 * unbundled build (build/src, the command line) loads it at import.
 */
/*! The bundle includes fast-json-stable-stringify 2.1.0, MIT license, Copyright (c) 2017 Evgeny Poberezkin, Copyright (c) 2013 James Halliday. */
import fastStableStringify from 'fast-json-stable-stringify';

/** Like JSON.stringify, undefined for undefined (canonicalPayload checks). */
export const stableStringify = fastStableStringify as (value: unknown) => string;
