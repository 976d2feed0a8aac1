/**
 * The batch numbers reported done, as an immutable set that stays small: sorted, disjoint runs of consecutive
 * numbers. Workers finish batches roughly in the order they were sent, so a million-entry TOC (thousands of
 * batches) is held in a few runs, and adding one copies those few numbers, not every number seen so far.
 */
export class BatchSet {
  static readonly empty = new BatchSet([]);

  /** Flat `[start, end)` pairs, sorted, never touching: `[0, 5, 7, 8]` is 0 to 4, and 7. */
  private constructor(private readonly runs: readonly number[]) {}

  /** How many runs of consecutive numbers the set holds (its size in memory). */
  get runCount(): number {
    return this.runs.length / 2;
  }

  has(batch: number): boolean {
    const i = this.runAtOrBefore(batch);
    return i >= 0 && batch < (this.runs[i + 1] as number);
  }

  /** This set with `batch` in it (the same set when it was there already). */
  add(batch: number): BatchSet {
    if (this.has(batch)) return this;
    const runs = this.runs;
    const i = this.runAtOrBefore(batch); // the run starting at or before `batch`, or -2 for none
    const joinsLeft = i >= 0 && runs[i + 1] === batch;
    const joinsRight = i + 2 < runs.length && runs[i + 2] === batch + 1;
    const head = runs.slice(0, Math.max(0, i));
    if (joinsLeft && joinsRight) return new BatchSet([...head, runs[i] as number, ...runs.slice(i + 3)]);
    if (joinsLeft) return new BatchSet([...head, runs[i] as number, batch + 1, ...runs.slice(i + 2)]);
    const before = i >= 0 ? runs.slice(i, i + 2) : [];
    if (joinsRight) return new BatchSet([...head, ...before, batch, ...runs.slice(i + 3)]);
    return new BatchSet([...head, ...before, batch, batch + 1, ...runs.slice(i + 2)]);
  }

  /** How many numbers in `[from, to)` the set holds. */
  countIn(from: number, to: number): number {
    let n = 0;
    for (let i = 0; i < this.runs.length; i += 2) {
      const lo = Math.max(from, this.runs[i] as number);
      const hi = Math.min(to, this.runs[i + 1] as number);
      if (hi > lo) n += hi - lo;
    }
    return n;
  }

  /** The runs of consecutive numbers, in order, as `[start, end)` pairs. */
  ranges(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.runs.length; i += 2)
      out.push([this.runs[i] as number, this.runs[i + 1] as number]);
    return out;
  }

  /**
   * The numbers of this set in `[from, to)` that `other` does not hold, as `[start, end)` ranges: at most
   * `limit` ranges (the first ones). Linear in the runs of both sets.
   */
  rangesNotIn(
    other: BatchSet,
    from: number,
    to: number,
    limit = Number.POSITIVE_INFINITY,
  ): [number, number][] {
    const out: [number, number][] = [];
    const theirs = other.runs;
    let j = 0;
    for (let i = 0; i < this.runs.length && out.length < limit; i += 2) {
      let lo = Math.max(from, this.runs[i] as number);
      const hi = Math.min(to, this.runs[i + 1] as number);
      while (lo < hi && out.length < limit) {
        while (j < theirs.length && (theirs[j + 1] as number) <= lo) j += 2;
        const start = j < theirs.length ? (theirs[j] as number) : Number.POSITIVE_INFINITY;
        if (start > lo) {
          const end = Math.min(hi, start);
          out.push([lo, end]);
          lo = end;
        } else lo = Math.min(hi, theirs[j + 1] as number);
      }
    }
    return out;
  }

  /** The index of the last run that starts at or before `batch`, or -2 when there is none. */
  private runAtOrBefore(batch: number): number {
    let lo = 0;
    let hi = this.runs.length / 2 - 1;
    let found = -2;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.runs[mid * 2] as number) <= batch) {
        found = mid * 2;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
