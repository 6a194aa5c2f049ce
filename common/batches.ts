/**
 * `each` over `items`, `size` at a time (a batch ends before the next begins), answers in
 * order; `afterEach` runs once each batch has ended (a lease renewed, say).
 */
export async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  each: (item: T) => Promise<R>,
  afterEach: () => void = () => {},
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...(await Promise.all(items.slice(i, i + size).map(each))));
    afterEach();
  }
  return out;
}
