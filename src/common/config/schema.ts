/**
 * The sync.conf schema: one source of truth for keys, types, defaults and descriptions.
 * `sync.conf.example` is generated from it (and a test keeps the two in step).
 */

export interface SyncConfig {
  NodeType: 'CSS' | 'ESS'
  LogLevel: 'error' | 'warn' | 'info' | 'debug'
  ListeningAddress: string
  ListeningType: 'http' | 'https' | 'unix' | 'secure-unix'
  ListeningPort?: number
  StorageProvider: 'local' | 'mongo' | 'memory'
  PersistenceRootPath: string
  MongoUri?: string
  MongoDbName: string
  BrokerMode: 'embedded' | 'external'
  BrokerAddress?: string
  ClusterRedisAddress?: string
  CommunicationProtocol: 'mqtt' | 'http' | 'auto'
  HttpCssAddress?: string
  MqttFallbackSeconds: number
  HttpPollSeconds: number
  BrokerUsername?: string
  BrokerPassword?: string
  CssInstanceId?: string
  MqttListeningAddress: string
  MqttListeningPort: number
  MqttTlsListeningPort?: number
  MqttWsListeningPort?: number
  ServerCertificate?: string
  ServerKey?: string
  CaCertificate?: string
  ClientCertificate?: string
  ClientKey?: string
  RequireTls: boolean
  AdminKey?: string
  AdminSecret?: string
  OrgID?: string
  DestinationType?: string
  DestinationID?: string
  NodeSecret?: string
  NodeProperties: string
  Plugins: string
  PluginOptions: string
  SigningKey?: string
  MaxInlineDataSize: number
  ChunkSize: number
  MaxConcurrentTransfers: number
  TransferWindow: number
  TransferTimeoutSeconds: number
  MaxJsonBodySize: number
  RateLimitPerSecond: number
  MqttMaxPayloadSize: number
  MaxDataSize: number
  HistoryRetention: number
  KeepAllHistoryTypes: string
  DeletedRetentionSeconds: number
  EmsDestinationType: string
  HeartbeatIntervalSeconds: number
  NodeOfflineAfterSeconds: number
  WebhookTimeoutMs: number
  UiSessionMinutes: number
  DriftAutoCorrect: boolean
  MetricsKey?: string
  Metrics: boolean
  AlertWebhooks: string
  AlertEmailTo: string
  AlertEmailFrom: string
  SmtpUrl?: string
  AlertOfflineAfterSeconds: number
  LeaseSeconds: number
  AlertFreshnessTarget: string
}

interface KeySchema {
  type: 'string' | 'integer' | 'boolean'
  description: string
  default?: string | number | boolean
  enum?: readonly string[]
  minimum?: number
  maximum?: number
  /** Never logged; shown as `[redacted]` in the startup summary. */
  secret?: boolean
  /** Which node types read the key (documentation only). */
  for: 'CSS' | 'ESS' | 'both'
}

export const CONFIG_KEYS: Readonly<Record<keyof SyncConfig, KeySchema>> = {
  NodeType: {
    type: 'string',
    enum: ['CSS', 'ESS'],
    default: 'CSS',
    for: 'both',
    description: 'Which service this process runs: CSS (cloud) or ESS (edge)'
  },
  LogLevel: {
    type: 'string',
    enum: ['error', 'warn', 'info', 'debug'],
    default: 'info',
    for: 'both',
    description: 'Lowest level written to the JSON log on stderr'
  },
  ListeningAddress: {
    type: 'string',
    default: '127.0.0.1',
    for: 'both',
    description: 'Address the REST API listens on; use 0.0.0.0 to expose it beyond this machine'
  },
  ListeningType: {
    type: 'string',
    enum: ['http', 'https', 'unix', 'secure-unix'],
    default: 'http',
    for: 'ESS',
    description:
      "How the ESS's local API listens (Open Horizon's values): http or https on ListeningAddress:ListeningPort, " +
      'or unix / secure-unix on the Unix socket at the path ListeningAddress names (https and secure-unix need ServerCertificate)'
  },
  ListeningPort: {
    type: 'integer',
    minimum: 0,
    maximum: 65535,
    for: 'both',
    description: 'REST API port (0 = any free port); defaults to 8080 on a CSS and 8081 on an ESS'
  },
  StorageProvider: {
    type: 'string',
    enum: ['local', 'mongo', 'memory'],
    default: 'local',
    for: 'both',
    description:
      'Store backend: local (JSON + data files under PersistenceRootPath), mongo (CSS only) or memory (tests; lost on exit)'
  },
  PersistenceRootPath: {
    type: 'string',
    default: './data',
    for: 'both',
    description: 'Folder for the local store, data files and generated bootstrap credentials'
  },
  MongoUri: {
    type: 'string',
    secret: true,
    for: 'CSS',
    description: 'MongoDB connection string, required when StorageProvider is mongo'
  },
  MongoDbName: { type: 'string', default: 'edgesync', for: 'CSS', description: 'MongoDB database name' },
  BrokerMode: {
    type: 'string',
    enum: ['embedded', 'external'],
    default: 'embedded',
    for: 'CSS',
    description: 'embedded: the CSS runs its own MQTT broker (Aedes); external: connect to BrokerAddress'
  },
  BrokerAddress: {
    type: 'string',
    for: 'both',
    description: 'MQTT URL of the broker (mqtt://host:port); required on an ESS and with an external broker'
  },
  ClusterRedisAddress: {
    type: 'string',
    secret: true,
    for: 'CSS',
    description:
      'Embedded broker, clustered: redis://host:port of the Redis that joins the CSS instances\' Aedes brokers (message routing, sessions, queued QoS 1 messages); needs StorageProvider mongo'
  },
  CommunicationProtocol: {
    type: 'string',
    enum: ['mqtt', 'http', 'auto'],
    default: 'mqtt',
    for: 'ESS',
    description:
      'How the ESS talks to the CSS: mqtt (BrokerAddress), http (long polls to HttpCssAddress), or auto (MQTT, and HTTP while the broker cannot be reached)'
  },
  HttpCssAddress: {
    type: 'string',
    for: 'ESS',
    description: 'URL of the CSS REST API (http://host:port or https://...) for CommunicationProtocol http or auto'
  },
  MqttFallbackSeconds: {
    type: 'integer',
    default: 10,
    minimum: 1,
    for: 'ESS',
    description: 'auto: how long the broker may be unreachable before the ESS syncs over HTTP'
  },
  HttpPollSeconds: {
    type: 'integer',
    default: 25,
    minimum: 1,
    maximum: 60,
    for: 'ESS',
    description:
      'HTTP link: how long the CSS holds a poll open when it has nothing to send (messages arrive at once either way)'
  },
  AlertWebhooks: {
    type: 'string',
    default: '',
    for: 'CSS',
    description: 'Comma-separated http(s) URLs that get every operator alert (JSON, signed like app webhooks, retried)'
  },
  AlertEmailTo: {
    type: 'string',
    default: '',
    for: 'CSS',
    description: 'Comma-separated e-mail addresses that get every operator alert (needs SmtpUrl)'
  },
  AlertEmailFrom: { type: 'string', default: 'edgesync@localhost', for: 'CSS', description: 'Sender of alert e-mails' },
  SmtpUrl: {
    type: 'string',
    secret: true,
    for: 'CSS',
    description: 'SMTP server for alert e-mails: smtp://[user:pass@]host:port (STARTTLS when offered) or smtps://'
  },
  LeaseSeconds: {
    type: 'integer',
    default: 15,
    minimum: 1,
    maximum: 3600,
    for: 'CSS',
    description:
      'Term of the leader lease for fleet-wide sweeps (offline and freshness alerts, lifecycle scans); renewed every third, taken over by another CSS instance when it lapses'
  },
  AlertOfflineAfterSeconds: {
    type: 'integer',
    default: 900,
    minimum: 2,
    for: 'CSS',
    description: 'Alert when an edge has sent no heartbeat for this long (once per silence)'
  },
  AlertFreshnessTarget: {
    type: 'string',
    default: '0.999',
    for: 'CSS',
    description:
      'Alert when the share of EMS edges running the newest config (or behind it for under 1 h) falls below this (0..1)'
  },
  Metrics: {
    type: 'boolean',
    default: true,
    for: 'both',
    description: 'Serve /metrics and record the figures behind it (false: neither, e.g. to measure their cost)'
  },
  MetricsKey: {
    type: 'string',
    secret: true,
    for: 'both',
    description:
      'Bearer token Prometheus sends to scrape /metrics from anywhere; without it /metrics answers loopback clients only'
  },
  BrokerUsername: { type: 'string', for: 'CSS', description: 'Username of the CSS on an external broker' },
  BrokerPassword: {
    type: 'string',
    secret: true,
    for: 'CSS',
    description: 'Password of the CSS on an external broker'
  },
  CssInstanceId: {
    type: 'string',
    for: 'CSS',
    description:
      'Stable name of this CSS instance on an external broker (its MQTT client ids): a restart resumes its own session and the messages queued for it. Default: generated once and kept in PersistenceRootPath/css/instance-id'
  },
  MqttListeningAddress: {
    type: 'string',
    default: '127.0.0.1',
    for: 'CSS',
    description: 'Address the embedded broker listens on'
  },
  MqttListeningPort: {
    type: 'integer',
    default: 1883,
    minimum: 0,
    maximum: 65535,
    for: 'CSS',
    description: 'TCP port of the embedded broker (0 = any free port)'
  },
  MqttTlsListeningPort: {
    type: 'integer',
    minimum: 0,
    maximum: 65535,
    for: 'CSS',
    description:
      'TLS (mqtts) port of the embedded broker, usually 8883; needs ServerCertificate and ServerKey'
  },
  MqttWsListeningPort: {
    type: 'integer',
    minimum: 0,
    maximum: 65535,
    for: 'CSS',
    description: 'WebSocket port of the embedded broker (path /mqtt); wss when ServerCertificate is set'
  },
  ServerCertificate: {
    type: 'string',
    for: 'both',
    description:
      'PEM file of the server certificate (syncctl certs server): turns on HTTPS for the REST API and serves the broker TLS and wss listeners'
  },
  ServerKey: { type: 'string', for: 'both', description: 'PEM file of the private key of ServerCertificate' },
  CaCertificate: {
    type: 'string',
    for: 'both',
    description:
      'PEM file of the CA (syncctl certs ca). ESS: the only CA trusted for the broker (pinned). CSS: nodes may log in to the embedded broker with a client certificate it signed'
  },
  ClientCertificate: {
    type: 'string',
    for: 'ESS',
    description:
      "PEM file of this node's client certificate (syncctl certs client), used on mqtts/wss instead of NodeSecret"
  },
  ClientKey: { type: 'string', for: 'ESS', description: 'PEM file of the private key of ClientCertificate' },
  RequireTls: {
    type: 'boolean',
    default: false,
    for: 'both',
    description:
      'Refuse plain text: the CSS needs ServerCertificate and opens no plain MQTT listener; the ESS only accepts an mqtts:// or wss:// BrokerAddress'
  },
  AdminKey: {
    type: 'string',
    for: 'both',
    description:
      'App key of the bootstrap admin (sync admin on a CSS, local admin on an ESS); generated into PersistenceRootPath when unset'
  },
  AdminSecret: {
    type: 'string',
    secret: true,
    for: 'both',
    description: 'Secret of the bootstrap admin; generated with AdminKey when unset'
  },
  OrgID: { type: 'string', for: 'ESS', description: 'Organization of this edge node' },
  DestinationType: { type: 'string', for: 'ESS', description: 'Destination type of this edge node' },
  DestinationID: { type: 'string', for: 'ESS', description: 'Destination ID of this edge node' },
  NodeSecret: {
    type: 'string',
    secret: true,
    for: 'ESS',
    description: 'Secret of this node on the broker, as printed when the node was enrolled'
  },
  SigningKey: {
    type: 'string',
    for: 'ESS',
    description:
      "The org's object-signing public key (keyId:base64) printed at enrollment: when set, the ESS accepts only objects signed by it (or by keys it announces on rotation)"
  },
  Plugins: {
    type: 'string',
    default: '',
    for: 'ESS',
    description:
      'Comma-separated plugins the ESS hosts; known: ems (validates, applies and rolls back ems-config objects on the Modbus runtime)'
  },
  PluginOptions: {
    type: 'string',
    default: '',
    for: 'ESS',
    description:
      'Plugin settings as comma-separated plugin.key=value pairs (ems.health_window_ms=3000: the health window when a config sets none)'
  },
  NodeProperties: {
    type: 'string',
    default: '',
    for: 'ESS',
    description:
      'Properties for selector addressing, as comma-separated name=value pairs (site=A,region=north)'
  },
  MaxInlineDataSize: {
    type: 'integer',
    default: 262144,
    minimum: 0,
    for: 'both',
    description:
      'Objects with at most this many bytes of data travel inside the update (or, from an edge, offer) message; larger data is pulled in chunks'
  },
  ChunkSize: {
    type: 'integer',
    default: 262144,
    minimum: 1024,
    maximum: 4194304,
    for: 'both',
    description: 'Bytes per chunk when an edge pulls data larger than MaxInlineDataSize'
  },
  MaxConcurrentTransfers: {
    type: 'integer',
    default: 8,
    minimum: 1,
    for: 'CSS',
    description:
      'Chunked transfers served at once; other edges are told to wait (keeps CSS memory flat during a large fan-out)'
  },
  TransferWindow: {
    type: 'integer',
    default: 4,
    minimum: 1,
    maximum: 64,
    for: 'both',
    description:
      'Chunks a receiver (an edge, or the CSS for edge objects) asks for ahead of what it has received'
  },
  TransferTimeoutSeconds: {
    type: 'integer',
    default: 10,
    minimum: 1,
    for: 'both',
    description: 'A chunk not received this long after it was asked for is asked for again'
  },
  RateLimitPerSecond: {
    type: 'integer',
    default: 200,
    minimum: 1,
    for: 'both',
    description: 'REST requests per second per app key (bursts of twice that); beyond it 429 with Retry-After'
  },
  MqttMaxPayloadSize: {
    type: 'integer',
    default: 8388608,
    minimum: 65536,
    for: 'CSS',
    description: 'Largest MQTT message the embedded broker accepts from a client, in bytes'
  },
  MaxJsonBodySize: {
    type: 'integer',
    default: 16777216,
    minimum: 1024,
    for: 'both',
    description: 'Largest JSON request body accepted, in bytes'
  },
  MaxDataSize: {
    type: 'integer',
    default: 4294967296,
    minimum: 1,
    for: 'both',
    description: 'Largest object data accepted, in bytes'
  },
  HistoryRetention: {
    type: 'integer',
    default: 10,
    minimum: 1,
    for: 'CSS',
    description: 'How many instances of each object are kept for history and rollback'
  },
  EmsDestinationType: {
    type: 'string',
    default: 'edge',
    for: 'CSS',
    description:
      'Destination type of the nodes that receive EMS configurations (ems-config objects); a node\'s site is its "site" property'
  },
  KeepAllHistoryTypes: {
    type: 'string',
    default: '_ems-layer,ems-config',
    for: 'CSS',
    description:
      'Comma-separated object types whose every instance is kept, whatever HistoryRetention says (EMS layers and configs: audit and rollback)'
  },
  DeletedRetentionSeconds: {
    type: 'integer',
    default: 604800,
    minimum: 1,
    for: 'CSS',
    description:
      'A deleted object is removed once every destination confirmed, or after this long at the latest'
  },
  HeartbeatIntervalSeconds: {
    type: 'integer',
    default: 30,
    minimum: 1,
    for: 'ESS',
    description: 'How often an ESS sends a heartbeat'
  },
  NodeOfflineAfterSeconds: {
    type: 'integer',
    default: 90,
    minimum: 1,
    for: 'CSS',
    description: 'A node with no heartbeat for this long is shown offline'
  },
  WebhookTimeoutMs: {
    type: 'integer',
    default: 5000,
    minimum: 100,
    for: 'ESS',
    description: 'Timeout of one webhook call to a local app'
  },
  DriftAutoCorrect: {
    type: 'boolean',
    default: false,
    for: 'CSS',
    description: 'Resend the newest EMS config to an edge found drifting (checked every 15 s, at most once per edge per 10 min); otherwise drift is only reported'
  },
  UiSessionMinutes: {
    type: 'integer',
    default: 480,
    minimum: 1,
    maximum: 10080,
    for: 'both',
    description: 'How long a dashboard login lasts (from login; checked by the server)'
  }
}

/** JSON Schema (draft-07) of a whole config, built from CONFIG_KEYS. */
export function configJsonSchema (): Record<string, unknown> {
  const properties: Record<string, unknown> = {}
  for (const [key, k] of Object.entries(CONFIG_KEYS)) {
    const p: Record<string, unknown> = { type: k.type, description: k.description }
    if (k.default !== undefined) p.default = k.default
    if (k.enum !== undefined) p.enum = k.enum
    if (k.minimum !== undefined) p.minimum = k.minimum
    if (k.maximum !== undefined) p.maximum = k.maximum
    properties[key] = p
  }
  return {
    $id: 'https://edgesync.dev/schemas/sync-conf.json',
    type: 'object',
    additionalProperties: false,
    properties,
    allOf: [
      {
        if: { required: ['NodeType'], properties: { NodeType: { const: 'ESS' } } },
        then: { required: ['OrgID', 'DestinationType', 'DestinationID'] }
      },
      {
        if: {
          required: ['NodeType'],
          properties: { NodeType: { const: 'ESS' }, CommunicationProtocol: { enum: ['mqtt', 'auto'] } }
        },
        then: { required: ['BrokerAddress'] }
      },
      {
        if: { required: ['CommunicationProtocol'], properties: { CommunicationProtocol: { enum: ['http', 'auto'] } } },
        then: { required: ['HttpCssAddress'], properties: { HttpCssAddress: { type: 'string', pattern: '^https?://' } } }
      },
      {
        if: { required: ['StorageProvider'], properties: { StorageProvider: { const: 'mongo' } } },
        then: { required: ['MongoUri'] }
      },
      {
        if: { required: ['ClusterRedisAddress'] },
        then: {
          required: ['StorageProvider'],
          properties: {
            StorageProvider: { const: 'mongo' },
            BrokerMode: { const: 'embedded' },
            ClusterRedisAddress: { type: 'string', pattern: '^rediss?://' }
          }
        }
      },
      { if: { required: ['ServerCertificate'] }, then: { required: ['ServerKey'] } },
      { if: { required: ['ServerKey'] }, then: { required: ['ServerCertificate'] } },
      { if: { required: ['ClientCertificate'] }, then: { required: ['ClientKey', 'CaCertificate'] } },
      { if: { required: ['MqttTlsListeningPort'] }, then: { required: ['ServerCertificate'] } },
      {
        if: { required: ['ListeningType'], properties: { ListeningType: { enum: ['https', 'secure-unix'] } } },
        then: { required: ['ServerCertificate'] }
      },
      {
        if: { required: ['ListeningType'], properties: { ListeningType: { enum: ['unix', 'secure-unix'] } } },
        then: { properties: { ListeningAddress: { type: 'string', pattern: '^/' } } }
      },
      {
        if: {
          required: ['RequireTls', 'NodeType'],
          properties: { RequireTls: { const: true }, NodeType: { const: 'CSS' } }
        },
        then: { required: ['ServerCertificate', 'MqttTlsListeningPort'] }
      },
      {
        if: {
          required: ['RequireTls', 'NodeType'],
          properties: { RequireTls: { const: true }, NodeType: { const: 'ESS' } }
        },
        then: {
          properties: {
            BrokerAddress: { type: 'string', pattern: '^(mqtts|wss)://' },
            HttpCssAddress: { type: 'string', pattern: '^https://' }
          }
        }
      },
      {
        if: {
          required: ['BrokerMode', 'NodeType'],
          properties: { BrokerMode: { const: 'external' }, NodeType: { const: 'CSS' } }
        },
        then: { required: ['BrokerAddress'] }
      }
    ]
  }
}

/** Text of sync.conf.example: every key, its description and default, commented out. */
export function configExampleText (): string {
  const lines = [
    '# edgesync configuration (sync.conf). Format: one "Key value" per line, # starts a comment.',
    '# Every key can also be set by an environment variable: NodeType -> NODE_TYPE.',
    '# Generated from src/common/config/schema.ts; a test keeps the two in step.',
    ''
  ]
  for (const [key, k] of Object.entries(CONFIG_KEYS)) {
    const extra = k.enum !== undefined ? ` One of: ${k.enum.join(', ')}.` : ''
    lines.push(`# ${k.description}.${extra} [${k.for}]${k.secret === true ? ' [secret]' : ''}`)
    lines.push(`# ${key} ${k.default !== undefined ? String(k.default) : ''}`.trimEnd())
    lines.push('')
  }
  return lines.join('\n')
}
