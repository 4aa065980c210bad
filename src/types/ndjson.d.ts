/** The parts of the `ndjson` package (2.x, no bundled types) this project uses. */
declare module 'ndjson' {
  import type { Transform, TransformOptions } from 'node:stream';

  /** An object-mode stream: each object written comes out as one JSON line (ending in os.EOL). */
  export function stringify(options?: TransformOptions): Transform;
  /** A stream of NDJSON text in, one parsed value per line out (`strict` rejects bad lines with an error). */
  export function parse(options?: TransformOptions & { strict?: boolean }): Transform;

  const ndjson: { stringify: typeof stringify; parse: typeof parse };
  export default ndjson;
}
