/** Small operations over any BlobStore, shared by the CSS, the ESS and the EMS service. */
import { createReadStream } from 'node:fs'
import type { BlobInfo, BlobStore } from './types.js'

/** A whole (small) blob in memory; undefined when it does not exist. Only for data known to be small. */
export async function readBlob (blobs: BlobStore, ref: string): Promise<Buffer | undefined> {
  const stream = await blobs.read(ref)
  if (stream === undefined) return undefined
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(parts)
}

/**
 * Makes a complete, verified file (a finished transfer) a blob: adopted by rename where the store
 * can, else streamed in (the file is then left for the caller to remove).
 */
export async function storeVerifiedFile (
  blobs: BlobStore,
  file: string,
  info: { size: number; sha256: string }
): Promise<BlobInfo> {
  return (
    (await blobs.adopt?.(file, info)) ??
    (await blobs.write(createReadStream(file, { start: 0, end: info.size - 1 })))
  )
}
