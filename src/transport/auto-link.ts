/**
 * `CommunicationProtocol auto`: MQTT while the broker can be reached, the HTTP link while it
 * cannot (a network that blocks 1883/8883). The MQTT client keeps retrying in the background;
 * once it connects, the edge registers over MQTT and the HTTP session ends. Each switch starts
 * with a register, so the CSS resyncs the edge exactly: nothing is lost between channels.
 */
import { TransportError } from '../common/errors.js'
import type { Logger } from '../common/log.js'

import type { EdgeLink, LinkHandlers } from './types.js'

export function autoLink (mqtt: EdgeLink, makeHttp: () => EdgeLink, fallbackMs: number, log: Logger): EdgeLink {
  let http: EdgeLink | undefined
  let timer: NodeJS.Timeout | undefined
  let handlers: LinkHandlers | undefined
  let closed = false

  const startHttp = (): void => {
    timer = undefined
    if (closed || mqtt.connected || http !== undefined || handlers === undefined) return
    log.warn('Broker not reachable; syncing with the CSS over HTTP', { afterMs: fallbackMs })
    const link = makeHttp()
    http = link
    link.open({ ...handlers, onDown: () => {} }).catch((err: unknown) => {
      log.error('HTTP link failed to start', { err })
    })
  }
  const stopHttp = async (): Promise<void> => {
    const link = http
    http = undefined
    if (link !== undefined) await link.close()
  }
  const arm = (): void => {
    if (closed || timer !== undefined || http !== undefined) return
    timer = setTimeout(startHttp, fallbackMs)
  }

  return {
    get channel () {
      return mqtt.connected || http === undefined ? 'mqtt' : 'http'
    },
    get connected () {
      return mqtt.connected || (http?.connected ?? false)
    },
    open: async (h) => {
      handlers = h
      arm() // cancelled by the first MQTT connect
      await mqtt.open({
        onMessage: h.onMessage,
        onConnect: async () => {
          clearTimeout(timer)
          timer = undefined
          if (http !== undefined) log.info('Broker reachable again; back to MQTT')
          await stopHttp()
          await h.onConnect?.()
        },
        onDown: arm
      })
    },
    publish: async (topic, payload, qos) => {
      if (mqtt.connected) {
        await mqtt.publish(topic, payload, qos)
        return
      }
      const link = http
      if (link?.connected !== true) throw new TransportError('Neither the broker nor the CSS over HTTP is reachable')
      await link.publish(topic, payload, qos)
    },
    close: async () => {
      closed = true
      clearTimeout(timer)
      await stopHttp()
      await mqtt.close()
    }
  }
}
