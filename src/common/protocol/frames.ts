/**
 * Framing of the HTTP link: the messages a long poll returns, each with the topic it was published
 * on (the same topics as over MQTT) and a sequence number the next poll acknowledges.
 * Frame: u32 seq, u16 topic length, topic (UTF-8), u32 payload length, payload.
 */
import { ProtocolError } from '../errors.js'

export interface Frame {
  seq: number
  topic: string
  payload: Buffer
}

const HEAD = 4 + 2

export function encodeFrames (frames: readonly Frame[]): Buffer {
  const parts: Buffer[] = []
  for (const f of frames) {
    const topic = Buffer.from(f.topic, 'utf8')
    const head = Buffer.alloc(HEAD + topic.length + 4)
    head.writeUInt32BE(f.seq, 0)
    head.writeUInt16BE(topic.length, 4)
    topic.copy(head, HEAD)
    head.writeUInt32BE(f.payload.length, HEAD + topic.length)
    parts.push(head, f.payload)
  }
  return Buffer.concat(parts)
}

/** Refuses a truncated or overlong body as a whole: a partial batch is never half processed. */
export function decodeFrames (body: Buffer): Frame[] {
  const out: Frame[] = []
  let at = 0
  while (at < body.length) {
    if (body.length - at < HEAD) throw new ProtocolError('Truncated frame header')
    const seq = body.readUInt32BE(at)
    const topicLen = body.readUInt16BE(at + 4)
    const topicEnd = at + HEAD + topicLen
    if (topicEnd + 4 > body.length) throw new ProtocolError('Truncated frame topic')
    const topic = body.toString('utf8', at + HEAD, topicEnd)
    const size = body.readUInt32BE(topicEnd)
    const end = topicEnd + 4 + size
    if (end > body.length) throw new ProtocolError('Truncated frame payload')
    out.push({ seq, topic, payload: body.subarray(topicEnd + 4, end) })
    at = end
  }
  return out
}
