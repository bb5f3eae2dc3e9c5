/**
 * The config schema (zod, strict: unknown keys are errors). Units live in the option names;
 * every default is a named constant here so docs, code and tests agree.
 *
 * @module
 */
import { z } from 'zod'

const KiB = 1024
const MiB = 1024 * KiB

/** Defaults of every execution limit. Each is tested at N and N+1. */
export const DEFAULT_LIMITS = Object.freeze({
  /** Wall-clock budget of one execution, transpile to result. */
  timeoutMs: 30_000,
  /** QuickJS heap limit per execution. */
  memoryBytes: 64 * MiB,
  /** QuickJS stack limit (the worker thread has 64 MiB of native stack). */
  stackBytes: 1 * MiB,
  /** Size of the model's source, in UTF-8 bytes. */
  maxSourceBytes: 256 * KiB,
  /** Inner tool calls per execution. */
  maxToolCalls: 50,
  /** Inner tool calls in flight at once. */
  maxConcurrentCalls: 8,
  /** Serialized arguments of one inner call. */
  maxArgsBytes: 256 * KiB,
  /** Nesting depth of one inner call's arguments. */
  maxArgsDepth: 64,
  /** Serialized result of one inner call, as it enters the guest. */
  maxResultBytes: 1 * MiB,
  /** Serialized `result` of the execution. */
  maxOutputBytes: 1 * MiB,
  /** Nesting depth of the execution's `result` (arrays and objects). */
  maxOutputDepth: 64,
  /** Total bytes of captured console output; beyond it logs are truncated with a marker. */
  maxLogBytes: 64 * KiB,
  /** Time given to one upstream call unless its server sets `timeoutMs`. */
  callTimeoutMs: 30_000,
  /**
   * The most one upstream call may run while its progress notifications keep restarting its
   * timeout (never less than that timeout). Inside `execute_code`, `timeoutMs` still ends it.
   */
  callMaxTotalMs: 300_000,
  /** Executions running at once in this process; more wait in the queue. */
  maxConcurrentExecutions: 8,
  /** Executions waiting for a slot; past it `OVERLOADED` at once (HTTP 503). */
  maxQueuedExecutions: 64,
})

export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number } & {
  /** Limits per caller (principal): absent keys are unlimited. */
  perPrincipal: { executionsPerMinute?: number }
}

const positiveInt = z.number().int().positive()

export const limitsSchema = z.strictObject({
  timeoutMs: positiveInt.max(15 * 60_000).default(DEFAULT_LIMITS.timeoutMs),
  memoryBytes: positiveInt
    .min(1 * MiB)
    .max(1024 * MiB)
    .default(DEFAULT_LIMITS.memoryBytes),
  stackBytes: positiveInt
    .min(64 * KiB)
    .max(8 * MiB)
    .default(DEFAULT_LIMITS.stackBytes),
  maxSourceBytes: positiveInt.max(16 * MiB).default(DEFAULT_LIMITS.maxSourceBytes),
  maxToolCalls: z.number().int().nonnegative().max(100_000).default(DEFAULT_LIMITS.maxToolCalls),
  maxConcurrentCalls: positiveInt.max(1024).default(DEFAULT_LIMITS.maxConcurrentCalls),
  maxArgsBytes: positiveInt.max(64 * MiB).default(DEFAULT_LIMITS.maxArgsBytes),
  maxArgsDepth: positiveInt.max(1024).default(DEFAULT_LIMITS.maxArgsDepth),
  maxResultBytes: positiveInt.max(64 * MiB).default(DEFAULT_LIMITS.maxResultBytes),
  maxOutputBytes: positiveInt.max(64 * MiB).default(DEFAULT_LIMITS.maxOutputBytes),
  maxOutputDepth: positiveInt.max(1024).default(DEFAULT_LIMITS.maxOutputDepth),
  maxLogBytes: z
    .number()
    .int()
    .nonnegative()
    .max(16 * MiB)
    .default(DEFAULT_LIMITS.maxLogBytes),
  callTimeoutMs: positiveInt.max(60 * 60_000).default(DEFAULT_LIMITS.callTimeoutMs),
  callMaxTotalMs: positiveInt.max(24 * 60 * 60_000).default(DEFAULT_LIMITS.callMaxTotalMs),
  maxConcurrentExecutions: positiveInt.max(4096).default(DEFAULT_LIMITS.maxConcurrentExecutions),
  maxQueuedExecutions: z
    .number()
    .int()
    .nonnegative()
    .max(1_000_000)
    .default(DEFAULT_LIMITS.maxQueuedExecutions),
  perPrincipal: z
    .strictObject({
      /** Executions one principal may start per minute (a token bucket); absent: unlimited. */
      executionsPerMinute: positiveInt.max(1_000_000).optional(),
    })
    .default({}),
})

/** Where a secret value comes from: `env:NAME` or `file:PATH`. Never inline. */
const secretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'expected "env:NAME" or "file:PATH"')

export const grantSchema = z.discriminatedUnion('grant', [
  z.strictObject({
    grant: z.literal('static'),
    header: z.string().regex(/^[A-Za-z0-9-]+$/, 'expected an HTTP header name'),
    valueFrom: secretRef,
    /** Optional prefix such as "Bearer ". */
    prefix: z.string().optional(),
  }),
  z.strictObject({
    grant: z.literal('token-exchange'),
    tokenEndpoint: z.url(),
    audience: z.string().min(1),
    resource: z.string().optional(),
    scope: z.string().optional(),
    clientId: z.string().optional(),
    clientSecretFrom: secretRef.optional(),
    /** Refresh this long before the exchanged token expires. */
    refreshSkewSeconds: z.number().int().nonnegative().max(3600).default(30),
    timeoutMs: positiveInt.max(60_000).default(5_000),
  }),
  z.strictObject({
    grant: z.literal('jwt'),
    audience: z.string().min(1),
    ttlSeconds: positiveInt.max(3600).default(300),
    scope: z.string().optional(),
  }),
  z.strictObject({
    grant: z.literal('passthrough'),
  }),
  /**
   * Secret environment variables of a stdio server, each read when the server is started:
   * `{ grant: env, env: { GITHUB_TOKEN: env:GITHUB_TOKEN } }`. What a registry entry's
   * `isSecret` environment variables become; the values never sit in the file.
   */
  z.strictObject({
    grant: z.literal('env'),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
        secretRef,
      )
      .refine((env) => Object.keys(env).length > 0, 'expected at least one variable'),
  }),
])

export type Grant = z.infer<typeof grantSchema>

/**
 * Data labels: short words in a safe alphabet, so a label is never mistaken for CEL syntax, a
 * path or a secret when it reaches a policy, an error message or the audit log.
 */
export const LABEL_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/

/** Labels one server or one tool may carry. */
export const MAX_LABELS_PER_ENTRY = 32

const labelSchema = z.string().regex(LABEL_PATTERN, {
  error: (issue) =>
    `${typeof issue.input === 'string' ? JSON.stringify(issue.input.slice(0, 80)) : 'this'} is not a label: expected a lower-case letter, then at most 63 of a-z, 0-9, "_" and "-" (${LABEL_PATTERN.source})`,
})

/** A list of labels; repeats mean nothing, so they are dropped. */
export const labelsSchema = z
  .array(labelSchema)
  .max(MAX_LABELS_PER_ENTRY, { error: `expected at most ${MAX_LABELS_PER_ENTRY} labels` })
  .transform((labels) => [...new Set(labels)])

/** What the config says about one upstream tool, keyed by the upstream's own spelling. */
export const toolSettingsSchema = z.strictObject({
  /** Labels of the data this tool reads or the way it sends data out (`egress`). */
  labels: labelsSchema.optional(),
})

const serverCommon = {
  /**
   * Labels of every tool of this server (data read here carries them into `execution.labels`).
   */
  labels: labelsSchema.optional(),
  /** Per-tool settings, keyed by the upstream tool name; checked against the server's tools. */
  tools: z.record(z.string(), toolSettingsSchema).optional(),
  /** Per-call timeout for this server. */
  timeoutMs: positiveInt.max(60 * 60_000).optional(),
  credentials: grantSchema.optional(),
  /** Expose tools of this server that the lock file does not pin. */
  allowUnpinned: z.boolean().optional(),
  /** Free text for humans; ignored. */
  description: z.string().optional(),
  disabled: z.boolean().optional(),
  /**
   * Where `sluice registry sync` found this entry: the registry, the entry's full name and the
   * exact version it resolved ("latest" is resolved once, here). A later sync replaces only
   * entries that carry an origin.
   */
  origin: z
    .strictObject({
      registry: z.string().min(1),
      name: z.string().min(1),
      version: z.string().min(1),
    })
    .optional(),
}

export const stdioServerSchema = z.strictObject({
  type: z.literal('stdio').optional(),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  /**
   * A dotenv file (`KEY=value` lines) read at load, as VS Code and Cursor do; `env` wins over it.
   * Relative to the config file.
   */
  envFile: z.string().optional(),
  cwd: z.string().optional(),
  ...serverCommon,
})

/**
 * `type` values of remote servers: Streamable HTTP under the spellings clients use (VS Code and
 * Claude Code `http`, Roo `streamable-http`, Cline `streamableHttp`), and the older HTTP+SSE
 * transport (`sse`), which has its own client transport.
 */
export const HTTP_SERVER_TYPES = ['http', 'streamable-http', 'streamableHttp', 'sse'] as const

export const httpServerSchema = z.strictObject({
  type: z.enum(HTTP_SERVER_TYPES).optional(),
  /** Checked as an http(s) URL after `${...}` expansion (`${BASE:-https://x}/mcp` is valid). */
  url: z.string().min(1),
  headers: z.record(z.string(), z.string()).default({}),
  ...serverCommon,
})

export const serverSchema = z.union([stdioServerSchema, httpServerSchema])
export type ServerConfig = z.infer<typeof serverSchema>
export type StdioServerConfig = z.infer<typeof stdioServerSchema>
export type HttpServerConfig = z.infer<typeof httpServerSchema>

/** Server names become `tools.<name>`: keep them to a safe, unambiguous alphabet. */
export const SERVER_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/

export const issuerSchema = z
  .strictObject({
    issuer: z.string().min(1),
    jwksFile: z.string().optional(),
    jwksUri: z.url().optional(),
    algorithms: z
      .array(
        z.enum([
          'RS256',
          'RS384',
          'RS512',
          'PS256',
          'PS384',
          'PS512',
          'ES256',
          'ES384',
          'ES512',
          'EdDSA',
        ]),
      )
      .min(1)
      .default(['RS256', 'ES256', 'EdDSA']),
    /** Required `typ` header, e.g. `at+jwt` (RFC 9068). */
    typ: z.string().optional(),
  })
  .refine((v) => (v.jwksFile === undefined) !== (v.jwksUri === undefined), {
    message: 'expected exactly one of jwksFile or jwksUri',
  })

/** An OAuth issuer identifier (RFC 8414 §2): an http(s) URL without query or fragment. */
const issuerUrl = z.string().refine(
  (v) => {
    if (!URL.canParse(v)) return false
    const u = new URL(v)
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.search && !u.hash
  },
  {
    message:
      'expected an issuer URL such as https://idp.example.com (http or https, no query or fragment)',
  },
)

export const identitySchema = z.strictObject({
  /** This gateway's canonical resource URI; tokens must carry exactly this audience. */
  audience: z.string().min(1),
  issuers: z.array(issuerSchema).min(1),
  tenantClaim: z.string().optional(),
  clockToleranceSeconds: z.number().int().nonnegative().max(300).default(30),
  maxTokenBytes: positiveInt.max(64 * 1024).default(8 * 1024),
  /** Principal of `sluice stdio` and `sluice run`. */
  local: z
    .strictObject({
      sub: z.string().min(1),
      tenant: z.string().optional(),
      scopes: z.array(z.string()).default([]),
      claims: z.record(z.string(), z.unknown()).default({}),
    })
    .optional(),
  /**
   * Authorization servers advertised in RFC 9728 metadata (default: the issuers that are URLs).
   * Issuer identifiers (RFC 8414): http(s) URLs without query or fragment; strict clients refuse
   * the whole metadata document otherwise.
   */
  authorizationServers: z.array(issuerUrl).optional(),
  /** Scopes advertised in RFC 9728 metadata. */
  scopesSupported: z.array(z.string()).optional(),
})

export const telemetrySchema = z.strictObject({
  serviceName: z.string().default('sluice'),
  /**
   * `otlp` uses OTLP/HTTP (OTEL_EXPORTER_OTLP_* env vars apply); `none` disables export. Unset:
   * `otlp` when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else
   * `none` (see `effectiveExporter`).
   */
  exporter: z.enum(['otlp', 'console', 'none']).optional(),
  endpoint: z.url().optional(),
  headers: z.record(z.string(), z.string()).default({}),
  /** Record code, arguments and results as span attributes. Off: only hashes and sizes. */
  captureContent: z.boolean().default(false),
})

/** The exporter in force: the configured one, else OTLP when the standard env vars name an endpoint. */
export function effectiveExporter(
  telemetry: { exporter?: 'otlp' | 'console' | 'none' | undefined },
  env: NodeJS.ProcessEnv = process.env,
): 'otlp' | 'console' | 'none' {
  if (telemetry.exporter !== undefined) return telemetry.exporter
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : 'none'
}

export const auditSchema = z.strictObject({
  file: z.string(),
  /** Rotate when the file passes this size; 0 disables rotation. */
  rotateBytes: z
    .number()
    .int()
    .nonnegative()
    .default(64 * MiB),
  /** Write a signed checkpoint every N records; 0 disables checkpoints. */
  checkpointEvery: z.number().int().nonnegative().default(0),
  /** Private JWK (file) that signs checkpoints. */
  signingKeyFile: z.string().optional(),
  /** fdatasync each record that announces an effect before the effect (durability over throughput). */
  fsync: z.boolean().default(true),
  /**
   * When another process already writes `file`: `segment` writes a chain of its own beside it
   * (`<stem>.<time>-<pid><ext>`), `refuse` stops with AUDIT_LOCKED. The chain never forks.
   */
  onLocked: z.enum(['segment', 'refuse']).default('segment'),
})

export const lockSchema = z.strictObject({
  file: z.string(),
  /** Public JWK or PEM (file) that must have signed the lock; absent: unsigned locks are accepted. */
  publicKeyFile: z.string().optional(),
  /** Expose tools that the lock does not pin (all servers). */
  allowUnpinned: z.boolean().default(false),
})

/** `NAME` or `NAME@VERSION` of an MCP Registry entry (`io.github.acme/weather@1.1.0`). */
export const REGISTRY_SERVER_PATTERN = /^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+(@[^\s@]+)?$/

/** Default time given to one request to a registry. */
export const DEFAULT_REGISTRY_TIMEOUT_MS = 10_000

/** `registry:`, what `sluice registry sync` imports when no flags say otherwise. */
export const registrySchema = z.strictObject({
  /** Base URL of an MCP Registry (the v0.1 read API lives under it). */
  url: z.url({ protocol: /^https?$/, error: 'expected an http or https URL' }).optional(),
  /** Entries to import, `NAME[@VERSION]`; absent: the whole registry. */
  servers: z
    .array(
      z
        .string()
        .regex(
          REGISTRY_SERVER_PATTERN,
          'expected NAME or NAME@VERSION (io.github.acme/weather@1.1.0)',
        ),
    )
    .optional(),
  /**
   * Per entry (full name): values of URL template variables, positional arguments (by
   * `valueHint`), named arguments and non-secret environment variables.
   */
  variables: z.record(z.string(), z.record(z.string(), z.string())).default({}),
  /**
   * Per entry: where each secret comes from (`env:NAME` or `file:PATH`), by environment variable
   * or header name. Default: `env:` and the name in upper case, `-` as `_`.
   */
  secrets: z.record(z.string(), z.record(z.string(), secretRef)).default({}),
  timeoutMs: positiveInt.max(5 * 60_000).default(DEFAULT_REGISTRY_TIMEOUT_MS),
})

export type RegistryConfig = z.infer<typeof registrySchema>

export const sandboxSchema = z.strictObject({
  /**
   * Worker threads kept running QuickJS, each hosting one execution at a time; default:
   * min(2, cores).
   */
  workers: positiveInt.max(256).optional(),
  /** Most worker threads at once: more start while executions wait. Default: max(8, workers). */
  maxWorkers: positiveInt.max(256).optional(),
  /** A worker above `workers` stops after this long without work. */
  idleWorkerMs: positiveInt.max(3_600_000).default(30_000),
  /** Ready sandboxes kept per worker. */
  prewarm: z.number().int().nonnegative().max(4).default(1),
  /** Extra time after `timeoutMs` before a stuck worker is terminated. */
  watchdogGraceMs: positiveInt.max(60_000).default(250),
})

/** Defaults of `gateway.resumability`; each limit is tested at N and N+1. */
export const DEFAULT_RESUMABILITY = Object.freeze({
  retryMs: 1_000,
  maxEventsPerStream: 1_000,
  maxBytes: 16 * MiB,
})

/** Default of `gateway.heapGrowthPercent`: the next full collection at 1.5× the live heap. */
export const DEFAULT_HEAP_GROWTH_PERCENT = 50

/** Defaults of `gateway.tasks`; each limit is tested at N and N+1. */
export const DEFAULT_TASKS = Object.freeze({
  ttlMs: 3_600_000,
  pollIntervalMs: 1_000,
  leaseMs: 15_000,
  maxPerPrincipal: 10,
})

export const gatewaySchema = z
  .strictObject({
    /** Also expose the allowed upstream tools one by one (under the same policy). */
    directMode: z.boolean().default(false),
    /** Extra Host header values accepted besides loopback and the bound host. */
    allowedHosts: z.array(z.string()).default([]),
    /** Browser origins accepted in the Origin header. */
    allowedOrigins: z.array(z.string()).default([]),
    maxBodyBytes: positiveInt.max(64 * MiB).default(4 * MiB),
    /**
     * What the model reads before its first call, in UTF-8 bytes: the `execute_code` description,
     * plus one `search_tools` answer when the tools do not fit inline (src/bindings/describe.ts).
     * 3 KiB stays under 1,000 o200k tokens with the outer tools' schemas (`npm run bench`, tokens).
     */
    descriptionBudgetBytes: positiveInt.max(1 * MiB).default(3 * KiB),
    /** The declarations one `search_tools` answer may carry; part of `descriptionBudgetBytes`. */
    searchBudgetBytes: positiveInt.max(1 * MiB).default(1 * KiB),
    /**
     * How long an `approve` decision waits for the human. The default stays under the MCP SDK
     * clients' 60 s request timeout; the engine also reports the wait as progress, so clients that
     * reset their timeout on progress can be given longer.
     */
    approvalTimeoutMs: positiveInt.max(60 * 60_000).default(50_000),
    /**
     * On MCP 2026-07-28 an approval ends the request and the execution resumes from a journal of
     * the calls before it (kept in the store for `approvalTimeoutMs`). Past this size the
     * approval is not asked and the execution fails with `APPROVAL_DENIED`.
     */
    approvalJournalMaxBytes: positiveInt.max(256 * MiB).default(8 * MiB),
    /**
     * 2025-11-25 sessions: SSE streams carry event ids and a `retry` field, and a client whose
     * stream dropped gets the events it missed by reconnecting with `Last-Event-ID`
     * (src/gateway/event-store.ts). The events are held in this process.
     */
    resumability: z
      .strictObject({
        /** The SSE `retry` field: how long a client waits before it reconnects. */
        retryMs: positiveInt.max(60_000).default(DEFAULT_RESUMABILITY.retryMs),
        /** Events held per stream; past it the stream's oldest go. */
        maxEventsPerStream: positiveInt
          .max(1_000_000)
          .default(DEFAULT_RESUMABILITY.maxEventsPerStream),
        /** Bytes held over every session of the process (0: no resumability, no event ids). */
        maxBytes: z
          .number()
          .int()
          .nonnegative()
          .max(1024 * MiB)
          .default(DEFAULT_RESUMABILITY.maxBytes),
      })
      .default({ ...DEFAULT_RESUMABILITY }),
    /**
     * How far V8 lets the process's heaps grow past what the last full collection kept, as a
     * percentage (src/cli/heap.ts): 50 lets the next one start at 1.5× the live heap. 0 leaves
     * V8's own choice, which goes up to 4× under load when the collector is slow beside the
     * program (a soak found the main thread's heap step from ≈125 to ≈300 MiB that way).
     */
    heapGrowthPercent: z.number().int().nonnegative().max(300).default(DEFAULT_HEAP_GROWTH_PERCENT),
    /**
     * MCP 2026-07-28 tasks (the `io.modelcontextprotocol/tasks` extension): an `execute_code`
     * call from a client that declares the extension answers at once with a task; the execution
     * runs on the replica that took it, and its state lives in the store (src/engine/tasks.ts).
     */
    tasks: z
      .strictObject({
        /** How long a task is kept, from its creation, whatever its status (its `ttlMs`). */
        ttlMs: positiveInt.min(1_000).max(86_400_000).default(DEFAULT_TASKS.ttlMs),
        /** The `pollIntervalMs` a task suggests to its client. */
        pollIntervalMs: positiveInt.min(100).max(60_000).default(DEFAULT_TASKS.pollIntervalMs),
        /**
         * The running replica renews its hold on a task every third of this; a task whose hold
         * ran out (the replica died) is `failed` at the next poll.
         */
        leaseMs: positiveInt.min(300).max(300_000).default(DEFAULT_TASKS.leaseMs),
        /** Tasks of one caller working or waiting for input at once, over every replica. */
        maxPerPrincipal: positiveInt.max(10_000).default(DEFAULT_TASKS.maxPerPrincipal),
      })
      .default({ ...DEFAULT_TASKS }),
    /** Serve TLS (and read the client certificate's SPIFFE ID). */
    tls: z
      .strictObject({
        certFile: z.string(),
        keyFile: z.string(),
        caFile: z.string().optional(),
        requestClientCert: z.boolean().default(false),
      })
      .optional(),
    /** Private JWK (file) the gateway signs `jwt` grants with. Generated in memory if absent. */
    signingKeyFile: z.string().optional(),
    /** Issuer the gateway puts in tokens it signs. */
    issuer: z.string().optional(),
    /** Actor token source for token exchange (`env:` or `file:`); default: a gateway-signed JWT. */
    actorTokenFrom: secretRef.optional(),
  })
  .refine((g) => g.searchBudgetBytes < g.descriptionBudgetBytes, {
    path: ['searchBudgetBytes'],
    message:
      'expected less than gateway.descriptionBudgetBytes: a search answer is part of that budget',
  })

export const storeSchema = z.strictObject({
  /** Shared state in Redis, so any replica answers any request. Absent: in-process. */
  redis: z
    .strictObject({
      url: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'expected a redis:// or rediss:// URL'),
      keyPrefix: z.string().max(64).default('sluice:'),
      commandTimeoutMs: z.number().int().positive().max(60_000).default(1000),
      connectTimeoutMs: z.number().int().positive().max(60_000).default(2000),
    })
    .optional(),
})

/**
 * What the PII guard detects (src/guard/): the `detect` names; a token is `[KIND_n]`, KIND the
 * name upper-cased.
 */
export const PII_KINDS = Object.freeze([
  'email',
  'phone',
  'card',
  'iban',
  'ssn',
  'ip',
  'api_key',
  'jwt',
  'private_key',
] as const)
export type PiiKind = (typeof PII_KINDS)[number]

/** `server.tool` or `server.*`: tools whose arguments get real values back for tokens. */
export const RESOLVE_FOR_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}\.(?:\*|[^\s.*]+)$/

/** Defaults of `guardrails.pii` once the block exists; each limit is tested at N and N+1. */
export const DEFAULT_PII = Object.freeze({
  ttlSeconds: 3600,
  maxValuesPerSession: 10_000,
  maxValues: 1_000_000,
})

export const guardrailsSchema = z.strictObject({
  /** PII and secrets in what reaches the model; the block switches tokenisation on. */
  pii: z
    .strictObject({
      /** `tokenize`: stable `[EMAIL_1]` tokens and a vault; `redact`: `[EMAIL]`, no vault. */
      mode: z.enum(['tokenize', 'redact', 'off']).default('tokenize'),
      detect: z
        .array(z.enum(PII_KINDS))
        .min(1)
        .default([...PII_KINDS]),
      /** `model`: result, logs and errors; `guest`: upstream results before the guest sees them too. */
      boundary: z.enum(['model', 'guest']).default('model'),
      /** Tools whose arguments get the real values of this principal's tokens, before policy. */
      resolveFor: z
        .array(z.string().regex(RESOLVE_FOR_PATTERN, 'expected "server.tool" or "server.*"'))
        .default([]),
      /** A token resolves this long after it was made. */
      ttlSeconds: positiveInt.max(7 * 86_400).default(DEFAULT_PII.ttlSeconds),
      /** Values one session's vault holds; past it new values are redacted, not tokenised. */
      maxValuesPerSession: positiveInt.max(1_000_000).default(DEFAULT_PII.maxValuesPerSession),
      /** Values the in-process vault holds over all sessions; past it, redacted as above. */
      maxValues: positiveInt.max(100_000_000).default(DEFAULT_PII.maxValues),
      /**
       * The 32-byte key (base64 or hex, `env:` or `file:`) of the vault in the shared store:
       * AES-256-GCM for values, HMAC for key names. Required with `store.redis` and `tokenize`.
       */
      vaultKeyFrom: secretRef.optional(),
    })
    .optional(),
  /**
   * Tool-originated text that reaches the model is fenced with per-execution random delimiters
   * (src/guard/spotlight.ts), and the `execute_code` description says so.
   */
  spotlight: z.boolean().default(false),
})

export const shutdownSchema = z.strictObject({
  /** On SIGTERM, how long running executions get to finish before the process exits anyway. */
  drainMs: z.number().int().nonnegative().max(3_600_000).default(25_000),
})

/**
 * VS Code's `inputs` (values it prompts for). sluice never prompts: `${input:ID}` reads
 * `SLUICE_INPUT_<ID>` from the environment, and the description names the value in errors.
 */
export const inputSchema = z.looseObject({
  id: z.string().min(1),
  type: z.string().optional(),
  description: z.string().optional(),
  password: z.boolean().optional(),
})

export const configSchema = z.strictObject({
  servers: z.record(z.string(), serverSchema).optional(),
  mcpServers: z.record(z.string(), serverSchema).optional(),
  inputs: z.array(inputSchema).optional(),
  policies: z.array(z.string()).optional(),
  limits: limitsSchema.default(limitsSchema.parse({})),
  lock: lockSchema.optional(),
  registry: registrySchema.optional(),
  identity: identitySchema.optional(),
  telemetry: telemetrySchema.default(telemetrySchema.parse({})),
  audit: auditSchema.optional(),
  sandbox: sandboxSchema.default(sandboxSchema.parse({})),
  gateway: gatewaySchema.default(gatewaySchema.parse({})),
  shutdown: shutdownSchema.default(shutdownSchema.parse({})),
  store: storeSchema.default(storeSchema.parse({})),
  guardrails: guardrailsSchema.default(guardrailsSchema.parse({})),
})

export type RawConfig = z.infer<typeof configSchema>
export type Guardrails = z.infer<typeof guardrailsSchema>
