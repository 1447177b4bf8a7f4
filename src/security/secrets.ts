/**
 * Secrets are stored hashed and compared in constant time. Secrets a person chose (a configured
 * admin secret) get scrypt, which makes guessing slow. Secrets we generate (node and app keys:
 * 192 random bits) cannot be guessed, so they get a salted SHA-256: scrypt's ~50 ms per check
 * would cost a CSS minutes of CPU when thousands of edges reconnect at once.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const N = 16384
const R = 8
const P = 1
const KEYLEN = 32

async function scrypt (secret: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scryptCb(secret, salt, KEYLEN, opts, (err, key) => {
      err === null ? resolve(key) : reject(err)
    })
  })
}

/** `scrypt$N$r$p$salt$hash`, base64url parts. */
export async function hashSecret (secret: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(secret, salt, { N, r: R, p: P })
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** `sha256$salt$hash` for generated, high-entropy secrets. */
export function hashGeneratedSecret (secret: string): string {
  const salt = randomBytes(16)
  return [
    'sha256',
    salt.toString('base64url'),
    createHash('sha256').update(salt).update(secret).digest('base64url')
  ].join('$')
}

export async function verifySecret (secret: string, stored: string): Promise<boolean> {
  if (stored.startsWith('sha256$')) {
    const [, salt, hash] = stored.split('$')
    const expected = Buffer.from(hash ?? '', 'base64url')
    const got = createHash('sha256')
      .update(Buffer.from(salt ?? '', 'base64url'))
      .update(secret)
      .digest()
    return expected.length === got.length && timingSafeEqual(expected, got)
  }
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, salt, hash] = parts
  const expected = Buffer.from(hash ?? '', 'base64url')
  const got = await scrypt(secret, Buffer.from(salt ?? '', 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p)
  })
  return expected.length === got.length && timingSafeEqual(expected, got)
}

export function generateSecret (): string {
  return randomBytes(24).toString('base64url')
}
