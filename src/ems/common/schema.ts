/**
 * The EMS configuration (the seed's data model): JSON Schema for its shape, used with ajv, and
 * published as conf/ems-config.schema.json (a test keeps the two in step).
 */
const id = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }

export const EMS_CONFIG_SCHEMA = {
  $id: 'https://edgesync.dev/schemas/ems-config.json',
  title: 'EMS edge configuration',
  type: 'object',
  additionalProperties: false,
  required: ['core_cycle', 'scheduler', 'modbus_devices', 'alarms'],
  properties: {
    version: { type: 'integer', minimum: 0, description: 'Set by the CSS for each effective config' },
    timestamp: { type: 'string', format: 'date-time' },
    edge_id: id,
    apply_windows: {
      type: 'array',
      maxItems: 16,
      description: 'Set by the CSS for a rollout that holds changes for maintenance windows: the edge applies this config only inside one',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['cron', 'duration_s', 'time_zone'],
        properties: {
          cron: { type: 'string', maxLength: 128 },
          duration_s: { type: 'integer', minimum: 1, maximum: 604800 },
          time_zone: { type: 'string', maxLength: 64 }
        }
      }
    },
    core_cycle: {
      type: 'object',
      additionalProperties: false,
      required: ['period_ms'],
      properties: {
        period_ms: { type: 'integer', minimum: 50, maximum: 60000 },
        supervisor: {
          type: 'object',
          additionalProperties: false,
          properties: {
            overrun_alert_threshold: { type: 'integer', minimum: 1, maximum: 1000 },
            auto_recovery: { type: 'boolean' }
          }
        },
        apply: {
          description:
            'When a new config takes effect: for all of it, or per component (a change takes effect at once only if every component it changes says immediate)',
          oneOf: [
            { enum: ['next_cycle', 'immediate'] },
            {
              type: 'object',
              additionalProperties: false,
              properties: {
                core_cycle: { enum: ['next_cycle', 'immediate'] },
                scheduler: { enum: ['next_cycle', 'immediate'] },
                modbus_devices: { enum: ['next_cycle', 'immediate'] },
                alarms: { enum: ['next_cycle', 'immediate'] }
              }
            }
          ]
        },
        health_window_ms: {
          type: 'integer',
          minimum: 0,
          maximum: 600000,
          description: 'How long a new config must run without failures before it is committed'
        }
      }
    },
    scheduler: {
      type: 'object',
      additionalProperties: false,
      required: ['controllers'],
      properties: {
        controllers: {
          type: 'array',
          maxItems: 64,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'class', 'enabled', 'execution_order', 'parameters'],
            properties: {
              id,
              class: { enum: ['BalancingController', 'PeakShavingController'] },
              enabled: { type: 'boolean' },
              execution_order: { type: 'integer', minimum: 0, maximum: 1000 },
              parameters: { type: 'object' },
              battery: { ...id, description: 'device_id of the battery this controller drives' },
              meter: { ...id, description: 'device_id of the grid meter this controller reads' }
            }
          }
        }
      }
    },
    modbus_devices: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['device_id', 'profile', 'connection'],
        properties: {
          device_id: id,
          profile: id,
          connection: {
            type: 'object',
            additionalProperties: false,
            required: ['protocol', 'host', 'port', 'unit_id'],
            properties: {
              protocol: { const: 'tcp' },
              host: { type: 'string', minLength: 1, maxLength: 253 },
              port: { type: 'integer', minimum: 1, maximum: 65535 },
              unit_id: { type: 'integer', minimum: 0, maximum: 255 },
              timeout_ms: { type: 'integer', minimum: 10, maximum: 60000 }
            }
          },
          poll_groups: {
            type: 'object',
            additionalProperties: false,
            properties: {
              fast: { type: 'array', items: { type: 'string' } },
              slow: { type: 'array', items: { type: 'string' } }
            }
          }
        }
      }
    },
    alarms: {
      type: 'array',
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'channel', 'condition', 'threshold', 'severity'],
        properties: {
          id,
          channel: { type: 'string', pattern: '^[^/]+/[^/]+$', description: 'device_id/ChannelName' },
          condition: { enum: ['<', '<=', '>', '>=', '==', '!='] },
          threshold: { type: 'number' },
          severity: { enum: ['info', 'warning', 'critical'] },
          notification: { type: 'array', items: { type: 'string' } }
        }
      }
    }
  }
} as const

/** Controller parameters: the rules each class's parameters follow (checked semantically). */
export const CONTROLLER_PARAMETERS = {
  BalancingController: {
    type: 'object',
    additionalProperties: false,
    required: ['target_grid_power'],
    properties: {
      target_grid_power: { type: 'number', minimum: -1e7, maximum: 1e7 },
      priority: { enum: ['self_consumption', 'grid_support'] }
    }
  },
  PeakShavingController: {
    type: 'object',
    additionalProperties: false,
    required: ['threshold_watts'],
    properties: {
      threshold_watts: { type: 'number', minimum: 0, maximum: 1e8 },
      recharge_enabled: { type: 'boolean' },
      recharge_below_watts: { type: 'number', minimum: 0 }
    }
  }
} as const

export type ControllerClass = keyof typeof CONTROLLER_PARAMETERS

export type ApplyMode = 'next_cycle' | 'immediate'
export type Component = 'core_cycle' | 'scheduler' | 'modbus_devices' | 'alarms'

export interface EmsConfig {
  version?: number
  timestamp?: string
  edge_id?: string
  apply_windows?: Array<{ cron: string, duration_s: number, time_zone: string }>
  core_cycle: {
    period_ms: number
    supervisor?: { overrun_alert_threshold?: number; auto_recovery?: boolean }
    apply?: ApplyMode | Partial<Record<Component, ApplyMode>>
    health_window_ms?: number
  }
  scheduler: {
    controllers: Array<{
      id: string
      class: ControllerClass
      enabled: boolean
      execution_order: number
      parameters: Record<string, unknown>
      battery?: string
      meter?: string
    }>
  }
  modbus_devices: Array<{
    device_id: string
    profile: string
    connection: { protocol: 'tcp'; host: string; port: number; unit_id: number; timeout_ms?: number }
    poll_groups?: { fast?: string[]; slow?: string[] }
  }>
  alarms: Array<{
    id: string
    channel: string
    condition: '<' | '<=' | '>' | '>=' | '==' | '!='
    threshold: number
    severity: 'info' | 'warning' | 'critical'
    notification?: string[]
  }>
}
