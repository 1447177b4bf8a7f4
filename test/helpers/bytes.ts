/** Deterministic test data: byte i is a function of i, so any range can be checked without keeping the data. */
export function byteAt (i: number): number {
  return (i * 31 + Math.floor(i / 251) * 7) & 0xff
}

export function expectedBytes (start: number, end: number): Buffer {
  const b = Buffer.allocUnsafe(end - start + 1)
  for (let i = start; i <= end; i++) b[i - start] = byteAt(i)
  return b
}

export async function * generateBytes (size: number, chunk = 64 * 1024): AsyncGenerator<Buffer> {
  for (let off = 0; off < size; off += chunk) yield expectedBytes(off, Math.min(off + chunk, size) - 1)
}

export async function collect (stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}
