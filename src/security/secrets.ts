/** App secrets: stored as scrypt hashes, compared in constant time. */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const N = 16384
const R = 8
const P = 1
const KEYLEN = 32

async function scrypt (secret: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scryptCb(secret, salt, KEYLEN, opts, (err, key) => { err === null ? resolve(key) : reject(err) })
  })
}

/** `scrypt$N$r$p$salt$hash`, base64url parts. */
export async function hashSecret (secret: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(secret, salt, { N, r: R, p: P })
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$')
}

export async function verifySecret (secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, salt, hash] = parts
  const expected = Buffer.from(hash ?? '', 'base64url')
  const got = await scrypt(secret, Buffer.from(salt ?? '', 'base64url'), { N: Number(n), r: Number(r), p: Number(p) })
  return expected.length === got.length && timingSafeEqual(expected, got)
}

export function generateSecret (): string {
  return randomBytes(24).toString('base64url')
}
