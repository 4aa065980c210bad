/**
 * How many bytes one read of the chain may consume before it stops
 * (ChainReader.readChain). The reader's offsets stay where the read
 * stopped, so "stop early and read again" resumes exactly there: this is
 * how the replay at open lets the event loop run between parts of a long
 * read (ChainLoader.loadAsync) while reading with the same code as a
 * catch-up, which reads with an unlimited budget.
 */
export class ByteBudget {
  private left: number;
  /** Bytes consumed so far. */
  used = 0;

  constructor(readonly bytes: number) {
    this.left = bytes;
  }

  static unlimited(): ByteBudget {
    return new ByteBudget(Number.POSITIVE_INFINITY);
  }

  get spent(): boolean {
    return this.left <= 0;
  }

  /** Where a read from `offset` may end in a file of `size` bytes. */
  endFor(offset: number, size: number): number {
    return Math.min(size, offset + this.left);
  }

  spend(bytes: number): void {
    this.used += bytes;
    this.left -= bytes;
  }

  /** The next line does not fit in what is left: the rest is given up, so the line starts the next read. */
  giveUp(): void {
    this.left = 0;
  }
}
