/**
 * The message codecs: every kind round-trips; chunk frames carry raw bytes and their hash; a frame
 * or envelope that is truncated, oversize or of the wrong direction is a ProtocolError.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import {
  allocChunkFrame, decodeDown, decodeUp, encode, encodeChunk, type DownMessage, type UpMessage
} from '../../../src/common/protocol/messages.js'

const ids = { objectType: 'conf', objectId: 'a', instanceId: 3 }
const meta = { objectID: 'a', objectType: 'conf', instanceID: 3, dataID: 3, objectSize: 0 }
const sig = { keyId: 'k1', value: 'c2ln' }

const UP: Array<Exclude<UpMessage, { kind: 'chunk' }>> = [
  { v: 1, kind: 'register', properties: { site: 's' }, codeVersion: '0.1.0', holdings: [{ ...ids, state: 'received' }] },
  { v: 1, kind: 'heartbeat', errors: 0, status: { ems: { running: 3 } } },
  { v: 1, kind: 'ack', state: 'error', ...ids, message: 'refused' },
  { v: 1, kind: 'fetch', ...ids, offset: 0, length: 1024 },
  { v: 1, kind: 'progress', ...ids, bytes: 2048 },
  { v: 1, kind: 'busy', ...ids, retryAfterMs: 500 },
  { v: 1, kind: 'gone', ...ids },
  { v: 1, kind: 'offer', meta: { ...meta, destinationOrgID: 'o' }, data: 'aGk=', chunkSize: 1024 }
]
const DOWN: Array<Exclude<DownMessage, { kind: 'chunk' }>> = [
  { v: 1, kind: 'registered', resent: 2 },
  { v: 1, kind: 'reregister', withinMs: 1000 },
  { v: 1, kind: 'update', meta: { ...meta, destinationOrgID: 'o' }, data: 'aGk=', sig },
  { v: 1, kind: 'trust', publicKey: 'k2:AAAA', sig },
  { v: 1, kind: 'delete', ...ids, sig },
  { v: 1, kind: 'fetch', ...ids, offset: 1024, length: 1024 },
  { v: 1, kind: 'busy', ...ids, retryAfterMs: 500 },
  { v: 1, kind: 'gone', ...ids },
  { v: 1, kind: 'state', ...ids, state: 'stored' }
]

t.test('every kind round-trips in its direction', async (t) => {
  for (const m of UP) t.same(decodeUp(encode(m)), m, `up ${m.kind}`)
  for (const m of DOWN) t.same(decodeDown(encode(m)), m, `down ${m.kind}`)
})

t.test('a message of the other direction is refused', async (t) => {
  t.throws(() => decodeUp(encode({ v: 1, kind: 'registered', resent: 0 })), { code: 'SYNC_ERR_PROTOCOL' })
  t.throws(() => decodeDown(encode(UP[0] as UpMessage & { kind: 'register' })), { code: 'SYNC_ERR_PROTOCOL' })
})

t.test('chunk frames: raw bytes with their hash, both encoders agree', async (t) => {
  const data = Buffer.from([0, 1, 2, 255, 254, 0x7b])
  const sha256 = createHash('sha256').update(data).digest('hex')
  const a = encodeChunk({ v: 1, kind: 'chunk', ...ids, offset: 6, sha256, data })
  const f = allocChunkFrame(ids, 6, data.length)
  data.copy(f.data)
  f.seal()
  for (const frame of [a, f.frame]) {
    const d = decodeDown(frame)
    t.equal(d.kind, 'chunk')
    if (d.kind !== 'chunk') continue
    t.same(d.data, data)
    t.equal(d.sha256, sha256)
    t.equal(d.offset, 6)
    t.same(decodeUp(frame), d, 'the same frame reads in both directions')
  }
  t.ok(a.length < data.length + 200, 'no base64: the frame costs the data plus a small header')
})

t.test('truncated, oversize and forged frames are protocol errors', async (t) => {
  const good = encodeChunk({ v: 1, kind: 'chunk', ...ids, offset: 0, sha256: '0'.repeat(64), data: Buffer.alloc(4) })
  const cases: Array<[string, Buffer]> = [
    ['truncated prefix', good.subarray(0, 3)],
    ['header cut short', good.subarray(0, 20)],
    ['header length beyond the frame', Buffer.concat([Buffer.from([0, 0, 0, 0x10, 0]), Buffer.from('{}')])],
    ['header length over 4 KiB', Buffer.concat([Buffer.from([0, 0, 0, 0x20, 0]), Buffer.alloc(9000, 32)])],
    ['header not JSON', Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from('{{{')])],
    ['header of another kind', Buffer.concat([Buffer.from([0, 0, 0, 0, 27]), Buffer.from('{"v":1,"kind":"gone","x":1}')])],
    ['empty payload', Buffer.alloc(0)],
    ['JSON of a wrong version', encode({ v: 2 as 1, kind: 'registered', resent: 0 })],
    ['fetch larger than the chunk cap', encode({ v: 1, kind: 'fetch', ...ids, offset: 0, length: 5 * 1024 * 1024 })]
  ]
  for (const [name, frame] of cases) {
    t.throws(() => decodeDown(frame), { code: 'SYNC_ERR_PROTOCOL' }, name)
  }
})
