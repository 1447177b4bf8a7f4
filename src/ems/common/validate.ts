/**
 * Validation of an EMS configuration: its shape (JSON Schema, all errors) and the rules a schema
 * cannot say (unique ids, references between devices, controllers and alarms, ranges). The same
 * function runs in the cloud before anything is published and on the edge before anything is applied.
 */
import { isIP } from 'node:net'
import { createAjv, describeErrors } from '../../common/validate.js'
import { loadProfiles, type DeviceProfile } from './profiles.js'
import { CONTROLLER_PARAMETERS, EMS_CONFIG_SCHEMA, type EmsConfig } from './schema.js'

export interface EmsProblem {
  path: string
  rule: string
  message: string
}

const ajv = createAjv({ strict: false })
const shape = ajv.compile<EmsConfig>(EMS_CONFIG_SCHEMA)
const params = Object.fromEntries(Object.entries(CONTROLLER_PARAMETERS).map(([k, s]) => [k, ajv.compile(s)]))

function duplicates<T> (items: T[], key: (t: T) => string): Set<string> {
  const seen = new Set<string>()
  const dup = new Set<string>()
  for (const i of items) {
    const k = key(i)
    if (seen.has(k)) dup.add(k)
    seen.add(k)
  }
  return dup
}

/**
 * Every problem of a config in one pass: its shape, then the rules. Rules are checked even when
 * the shape has errors, as far as the parts they read are sound (a config with a bad period and a
 * bad alarm reference reports both); a rule already reported at the same path is not repeated.
 */
export function validateEmsConfig (
  value: unknown,
  profiles: ReadonlyMap<string, DeviceProfile> = loadProfiles()
): EmsProblem[] {
  const shapeProblems = shape(value)
    ? []
    : (shape.errors ?? []).map((e) => ({
        path: e.instancePath === '' ? '/' : e.instancePath,
        rule: `schema.${e.keyword}`,
        message: describeErrors([e])[0] ?? e.message ?? ''
      }))
  let rules: EmsProblem[] = []
  try {
    rules = ruleProblems(value as EmsConfig, profiles)
  } catch {
    // Too broken to check the rules (a section missing or of the wrong type): the shape says why.
  }
  const seen = new Set(shapeProblems.map((p) => p.path))
  return [...shapeProblems, ...rules.filter((r) => !seen.has(r.path))]
}

/** A host name (RFC 1123) or an IP address. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

function ruleProblems (cfg: EmsConfig, profiles: ReadonlyMap<string, DeviceProfile>): EmsProblem[] {
  const out: EmsProblem[] = []
  const add = (path: string, rule: string, message: string): void => {
    out.push({ path, rule, message })
  }
  const devices = new Map(cfg.modbus_devices.map((d) => [d.device_id, d]))

  const dupDevices = duplicates(cfg.modbus_devices, (d) => d.device_id)
  cfg.modbus_devices.forEach((d, i) => {
    const at = `/modbus_devices/${i}`
    if (dupDevices.has(d.device_id)) {
      add(`${at}/device_id`, 'unique-device-id', `device_id ${d.device_id} is used more than once`)
    }
    const profile = profiles.get(d.profile)
    if (profile === undefined) {
      add(
        `${at}/profile`,
        'profile-exists',
        `No device profile ${d.profile} (known: ${[...profiles.keys()].join(', ')})`
      )
      return
    }
    for (const group of ['fast', 'slow'] as const) {
      ;(d.poll_groups?.[group] ?? []).forEach((ch, j) => {
        if (profile.channels[ch] === undefined) {
          add(
            `${at}/poll_groups/${group}/${j}`,
            'channel-exists',
            `Profile ${d.profile} has no channel ${ch}`
          )
        }
      })
    }
  })
  cfg.modbus_devices.forEach((d, i) => {
    const host = d.connection.host
    if (typeof host === 'string' && isIP(host) === 0 && !HOST_NAME.test(host)) {
      add(
        `/modbus_devices/${i}/connection/host`,
        'host-valid',
        `${JSON.stringify(host)} is neither a host name nor an IP address`
      )
    }
  })
  const dupUnits = duplicates(
    cfg.modbus_devices,
    (d) => `${d.connection.host}:${d.connection.port}#${d.connection.unit_id}`
  )
  cfg.modbus_devices.forEach((d, i) => {
    const k = `${d.connection.host}:${d.connection.port}#${d.connection.unit_id}`
    if (dupUnits.has(k)) {
      add(
        `/modbus_devices/${i}/connection/unit_id`,
        'unique-unit-id',
        `Modbus unit ${d.connection.unit_id} at ${d.connection.host}:${d.connection.port} is used by more than one device`
      )
    }
  })

  const dupCtrl = duplicates(cfg.scheduler.controllers, (c) => c.id)
  const dupOrder = duplicates(
    cfg.scheduler.controllers.filter((c) => c.enabled),
    (c) => String(c.execution_order)
  )
  cfg.scheduler.controllers.forEach((c, i) => {
    const at = `/scheduler/controllers/${i}`
    if (dupCtrl.has(c.id)) {
      add(`${at}/id`, 'unique-controller-id', `Controller id ${c.id} is used more than once`)
    }
    if (c.enabled && dupOrder.has(String(c.execution_order))) {
      add(
        `${at}/execution_order`,
        'unique-execution-order',
        `execution_order ${c.execution_order} is shared by several enabled controllers`
      )
    }
    const check = params[c.class]
    if (check !== undefined && !check(c.parameters)) {
      for (const e of check.errors ?? []) {
        add(`${at}/parameters${e.instancePath}`, `parameters.${e.keyword}`, describeErrors([e])[0] ?? '')
      }
    }
    for (const [field, role] of [
      ['battery', 'battery'],
      ['meter', 'meter']
    ] as const) {
      const ref = c[field]
      if (ref === undefined) continue
      const dev = devices.get(ref)
      if (dev === undefined) {
        add(
          `${at}/${field}`,
          'device-exists',
          `Controller ${c.id} refers to device ${ref}, which is not configured`
        )
        continue
      }
      const p = profiles.get(dev.profile)
      if (p !== undefined && p.role !== role) {
        add(
          `${at}/${field}`,
          'device-role',
          `Device ${ref} (profile ${dev.profile}) is a ${p.role}, not a ${role}`
        )
      }
    }
    if (c.class === 'PeakShavingController') {
      const p = c.parameters as { threshold_watts?: number; recharge_below_watts?: number }
      if (
        p.recharge_below_watts !== undefined &&
        p.threshold_watts !== undefined &&
        p.recharge_below_watts >= p.threshold_watts
      ) {
        add(
          `${at}/parameters/recharge_below_watts`,
          'range',
          'recharge_below_watts must be below threshold_watts'
        )
      }
    }
  })

  const dupAlarms = duplicates(cfg.alarms, (a) => a.id)
  cfg.alarms.forEach((a, i) => {
    const at = `/alarms/${i}`
    if (dupAlarms.has(a.id)) add(`${at}/id`, 'unique-alarm-id', `Alarm id ${a.id} is used more than once`)
    const [deviceId = '', channel = ''] = a.channel.split('/')
    const dev = devices.get(deviceId)
    if (dev === undefined) {
      add(
        `${at}/channel`,
        'device-exists',
        `Alarm ${a.id} watches device ${deviceId}, which is not configured`
      )
      return
    }
    const ch = profiles.get(dev.profile)?.channels[channel]
    if (ch === undefined) {
      add(`${at}/channel`, 'channel-exists', `Profile ${dev.profile} has no channel ${channel}`)
      return
    }
    if ((ch.min !== undefined && a.threshold < ch.min) || (ch.max !== undefined && a.threshold > ch.max)) {
      add(
        `${at}/threshold`,
        'range',
        `Threshold ${a.threshold} is outside ${channel}'s range ${ch.min ?? '-∞'}..${ch.max ?? '∞'}`
      )
    }
  })
  return out
}
