/**
 * An immutable list that grows at its end in time proportional to what is appended, not to what it holds:
 * the master's error list, which may reach millions of entries one batch at a time.
 *
 * Versions share one backing array: a version is a length over it. Appending to the newest version pushes
 * onto the shared array; appending to an older one (a version something was already appended to) copies its
 * own items first, so every version keeps exactly its items and none sees another's.
 */
export class AppendList<T> implements Iterable<T> {
  /** A new empty list (with storage of its own: no two lists start on the same array). */
  static empty<T>(): AppendList<T> {
    return new AppendList<T>([], 0);
  }

  static of<T>(items: readonly T[]): AppendList<T> {
    return AppendList.empty<T>().append(items);
  }

  private constructor(
    private readonly store: T[],
    readonly length: number,
  ) {}

  /** This list with `items` at its end (the same list when there are none). */
  append(items: readonly T[]): AppendList<T> {
    if (items.length === 0) return this;
    const store = this.store.length === this.length ? this.store : this.store.slice(0, this.length);
    for (const item of items) store.push(item);
    return new AppendList(store, store.length);
  }

  at(index: number): T | undefined {
    const i = index < 0 ? this.length + index : index;
    return i >= 0 && i < this.length ? this.store[i] : undefined;
  }

  /** Whether `other` is a version over the same backing array (appending to the newest one copied nothing). */
  sharesStorageWith(other: AppendList<T>): boolean {
    return this.store === other.store;
  }

  toArray(): T[] {
    return this.store.slice(0, this.length);
  }

  toJSON(): T[] {
    return this.toArray();
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.length; i++) yield this.store[i] as T;
  }
}
