/** Runs `fn` over `items` with at most `limit` calls in flight (so their store writes can share commits). */
export async function forEachLimit<T> (
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>
): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        await fn(items[i] as T, i)
      }
    })
  )
}
