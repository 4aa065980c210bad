/**
 * Where a line starts: file, 1-based line number, byte offset. The engine's
 * commit framing and snapshot entries carry it so that every warning can name
 * the exact place; the directory backend's readers (storage/file/) make it.
 */
export interface LinePlace {
  file: string;
  line: number;
  offset: number;
}
