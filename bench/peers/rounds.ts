/**
 * Alternating rounds, as the other benchmarks do: on a shared machine load
 * comes in bursts, so each round runs both sides (the order flipped every
 * round) and the headline is the median of the per-round ratios.
 */
import { fmtRatio, log, median } from '../common.js';

export interface Rounds<T> {
  ours: T[];
  peer: T[];
  /** ours ÷ peer of each round, by `score` (bigger is better). */
  ratios: number[];
  ratio: number;
}

export async function alternate<T>(label: string, rounds: number, ours: () => Promise<T>, peer: () => Promise<T>, score: (x: T) => number): Promise<Rounds<T>> {
  const out: Rounds<T> = { ours: [], peer: [], ratios: [], ratio: NaN };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const side of order) {
      log(`${label}: round ${r + 1}/${rounds} ${side}`);
      out[side].push(await (side === 'ours' ? ours() : peer()));
    }
    out.ratios.push(score(out.ours[r]!) / score(out.peer[r]!));
  }
  out.ratio = median(out.ratios);
  return out;
}

export const ratioList = (rs: readonly number[]): string => rs.map(fmtRatio).join(', ');
