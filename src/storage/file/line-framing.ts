/**
 * How a store file is cut into lines (docs/FORMAT.md, "Records"): the rules
 * every line reader applies, whatever it reads from (a segment by offset, a
 * stream, a gunzipped archive in memory). A line ends at `\n`; a `\r` before
 * it is not part of it (CRLF is read as LF); an empty line is skipped; a
 * UTF-8 byte order mark at the very start of a file is not part of the
 * first line; a line's length, for `maxLineBytes`, is its content's.
 */
export const NEWLINE = 0x0a;
const CR = 0x0d;

/** Bytes of a UTF-8 byte order mark. */
export const BOM_BYTES = 3;

/** True when `bytes` begins with a UTF-8 byte order mark. */
export const startsWithBom = (bytes: Uint8Array): boolean => bytes.length >= BOM_BYTES && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;

/** Where a line's content ends: at its newline `nl`, or one byte earlier for a CR before it. */
export const contentEnd = (bytes: Uint8Array, start: number, nl: number): number => (nl > start && bytes[nl - 1] === CR ? nl - 1 : nl);

/** True when the byte is a CR (a line's last byte before its newline, read across chunks). */
export const isCr = (byte: number | undefined): boolean => byte === CR;
