/**
 * The composition root shared by every command that runs code: config → sandbox pool, upstreams,
 * lock, policy, grants, audit → engine. Each piece is released in `close()`, in reverse order.
 *
 * @module
 */
import { AuditLog } from '../audit/index.js'
import { createGrantBroker, createRedactor, loadOrCreateGatewayKey } from '../auth/index.js'
import {
  declaredLabels,
  effectiveExporter,
  isSecretHeader,
  readSecretRef,
  readVaultKey,
  type Config,
  type ServerConfig,
} from '../config/index.js'
import { startTelemetry } from '../telemetry/sdk.js'
import { Engine } from '../engine/index.js'
import { StoreVault, type Vault } from '../guard/index.js'
import {
  allowAllPolicy,
  loadPolicies,
  type LoadPolicyOptions,
  type PolicySet,
} from '../policy/index.js'
import { readLock, type LockFile } from '../registry/index.js'
import { SandboxPool } from '../sandbox/index.js'
import { UpstreamSet } from '../upstream/index.js'
import { MemoryStore, RedisStore, type SharedStore } from '../store/index.js'
import { configureAttributes, metrics } from '../telemetry/index.js'

/** Least time given to an upstream to start and answer `initialize`. */
export const CONNECT_TIMEOUT_MS = 15_000

export type LogFn = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void

/** Operator log as JSON lines on stderr (stdout belongs to results and to the stdio transport). */
export const stderrLog: LogFn = (level, message, fields) => {
  process.stderr.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`,
  )
}

/**
 * The session-level headers of a url server with a static grant: its initialize, listing and
 * notification stream carry the same operator secret its calls do (a server that checks its API
 * key on every request could not even be listed otherwise). Per-principal grants stay per call.
 */
export function staticSessionHeaders(
  server: ServerConfig,
  baseDir: string,
): (() => Record<string, string>) | undefined {
  const grant = server.credentials
  if (grant?.grant !== 'static' || !('url' in server)) return undefined
  return () => ({
    [grant.header]: `${grant.prefix ?? ''}${readSecretRef(grant.valueFrom, baseDir)}`,
  })
}

/** Starts span export as the config (or the standard OTEL_* variables) says. */
export async function startTelemetryFor(config: Config) {
  return startTelemetry({
    serviceName: config.telemetry.serviceName,
    exporter: effectiveExporter(config.telemetry),
    ...(config.telemetry.endpoint ? { endpoint: config.telemetry.endpoint } : {}),
    headers: config.telemetry.headers,
  })
}

export interface Runtime {
  config: Config
  engine: Engine
  policy: PolicySet
  lock?: LockFile
  audit?: AuditLog
  close(): Promise<void>
}

export interface ComposeOptions {
  log?: LogFn
  /** Say on stderr when no policies are configured (run and stdio allow every tool then). */
  allowAllWithoutPolicies: boolean
  /** Policies and lock already loaded and checked (`sluice serve`, which reloads them later). */
  loaded?: { policy: PolicySet; lock?: LockFile }
}

/**
 * The shared store: Redis when `store.redis` is set (connected now, so a wrong URL or a Redis
 * that is down fails the start with STORE_UNAVAILABLE), else in-process.
 */
async function openStore(config: Config, log: LogFn): Promise<SharedStore> {
  const redis = config.store.redis
  if (redis === undefined) return new MemoryStore()
  let lastLogged = 0
  const store = new RedisStore({
    ...redis,
    // The client retries on its own; say so at most every 10 s, not once per attempt.
    onError: (err) => {
      const now = Date.now()
      if (now - lastLogged < 10_000) return
      lastLogged = now
      log('warn', `store: Redis connection error (reconnecting): ${err.message}`)
    },
  })
  try {
    await store.connect()
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

/**
 * The PII vault when it lives in the shared store: with `store.redis` and `tokenize`, encrypted
 * under `guardrails.pii.vaultKeyFrom` (the config refuses that pair without a key). Otherwise
 * undefined, and the engine keeps its in-process vault; a key given then is still read, so a
 * wrong one fails now rather than on the day Redis is switched on.
 */
function openVault(
  config: Config,
  store: SharedStore,
  key: Uint8Array | undefined,
): Vault | undefined {
  const pii = config.guardrails.pii
  if (pii?.mode !== 'tokenize' || store.kind !== 'redis' || key === undefined) return undefined
  return new StoreVault({
    store,
    key,
    ttlSeconds: pii.ttlSeconds,
    maxValuesPerSession: pii.maxValuesPerSession,
  })
}

/** Builds and starts every part the engine needs. Throws SluiceError on bad config, policy or lock. */
export async function compose(config: Config, options: ComposeOptions): Promise<Runtime> {
  const log = options.log ?? stderrLog
  configureAttributes({ captureContent: config.telemetry.captureContent })
  const policy = options.loaded?.policy ?? loadPolicySet(config, options, log)
  const lock = options.loaded
    ? options.loaded.lock
    : config.lock
      ? await readLock(
          config.lock.file,
          config.lock.publicKeyFile ? { publicKeyFile: config.lock.publicKeyFile } : {},
        )
      : undefined
  const closers: Array<() => Promise<void>> = []
  try {
    const audit = config.audit
      ? await AuditLog.open({
          file: config.audit.file,
          rotateBytes: config.audit.rotateBytes,
          checkpointEvery: config.audit.checkpointEvery,
          fsync: config.audit.fsync,
          onLocked: config.audit.onLocked,
          ...(config.audit.signingKeyFile ? { signingKeyFile: config.audit.signingKeyFile } : {}),
        })
      : undefined
    if (audit) {
      closers.push(() => audit.close())
      for (const warning of audit.openWarnings) log('warn', `audit: ${warning}`)
    }
    // Before the store connects: a bad key is a config error, whatever Redis says.
    const vaultKey = readVaultKey(config)
    const store = await openStore(config, log)
    closers.push(() => store.close())
    const vault = openVault(config, store, vaultKey)
    let templateFailureLogged = false
    // Not awaited yet: the workers warm up while the upstreams start (below).
    const poolStarting = SandboxPool.create({
      ...(config.sandbox.workers ? { workers: config.sandbox.workers } : {}),
      // One execution per worker: as many workers as executions may run, unless set.
      maxWorkers: config.sandbox.maxWorkers ?? config.limits.maxConcurrentExecutions,
      idleWorkerMs: config.sandbox.idleWorkerMs,
      prewarm: config.sandbox.prewarm,
      watchdogGraceMs: config.sandbox.watchdogGraceMs,
      defaultLimits: config.limits,
      onEvent: (event) => {
        if (event.type === 'template-fallback') {
          metrics.templateFallbacks.inc({})
          // Once: the pool turns templates off, so this is a lasting slow-down, not a storm.
          if (!templateFailureLogged) {
            templateFailureLogged = true
            log(
              'warn',
              'sandbox instance template failed: instances are built in full from now on',
              {
                worker: event.workerId,
                reason: event.reason,
              },
            )
          }
        } else {
          log('warn', 'sandbox worker lost', { worker: event.workerId, reason: event.reason })
        }
      },
    })
    poolStarting.catch(() => undefined) // awaited below; this only marks it handled meanwhile
    closers.push(async () => {
      const started = await poolStarting.catch(() => undefined)
      await started?.close()
    })
    let engine: Engine | undefined
    const redactor = createRedactor()
    const upstreams = new UpstreamSet(config.servers, {
      callTimeoutMs: config.limits.callTimeoutMs,
      // Crashes, failed connects and recycled sessions reach the operator log; a server's stderr
      // tail may echo a secret it was given, so every string passes the redactor first.
      logger: {
        warn: (fields, message) =>
          log(
            'warn',
            message,
            Object.fromEntries(
              Object.entries(fields).map(([k, v]) => [
                k,
                typeof v === 'string' ? redactor.redact(v) : v,
              ]),
            ),
          ),
      },
      onToolsChanged: (server: string) => void engine?.refresh(server),
      // Starting a server (npx, a cold Node process) can take longer than one call may.
      perServer: (server) => {
        const sessionHeaders = staticSessionHeaders(config.servers[server]!, config.baseDir)
        return {
          connectTimeoutMs: Math.max(
            CONNECT_TIMEOUT_MS,
            config.servers[server]?.timeoutMs ?? config.limits.callTimeoutMs,
          ),
          ...(sessionHeaders ? { sessionHeaders } : {}),
        }
      },
    })
    closers.push(() => upstreams.close())
    // Register static secrets up front: another upstream (or an error) may echo one before the
    // grant is ever used.
    for (const [name, server] of Object.entries(config.servers)) {
      // A secret header's value came from the environment (`Bearer ${TOKEN}`): the same applies.
      for (const [header, value] of Object.entries('headers' in server ? server.headers : {})) {
        if (!isSecretHeader(header)) continue
        redactor.add(value)
        const scheme = /^\s*[A-Za-z][A-Za-z0-9-]*\s+(\S.*)$/.exec(value)
        if (scheme?.[1] !== undefined) redactor.add(scheme[1])
      }
      if (server.credentials?.grant === 'env') {
        for (const [variable, ref] of Object.entries(server.credentials.env)) {
          try {
            redactor.add(readSecretRef(ref, config.baseDir))
          } catch (cause) {
            log(
              'warn',
              `server ${name}: secret ${variable} unavailable; the server will not start until it is set`,
              { error: cause instanceof Error ? cause.message : String(cause) },
            )
          }
        }
        continue
      }
      if (server.credentials?.grant !== 'static') continue
      try {
        const value = readSecretRef(server.credentials.valueFrom, config.baseDir)
        redactor.add(value)
        if (server.credentials.prefix) redactor.add(`${server.credentials.prefix}${value}`)
      } catch (cause) {
        log(
          'warn',
          `server ${name}: static credential unavailable; calls will fail until it is set`,
          {
            error: cause instanceof Error ? cause.message : String(cause),
          },
        )
      }
    }
    // Connect now, once every secret is registered: each server's process starts while the
    // sandbox pool warms up. A failure here is what the catalogue's first listing reports.
    for (const name of upstreams.names())
      void upstreams
        .get(name)
        ?.connect()
        .catch(() => undefined)
    const needsGrants = Object.values(config.servers).some((s) => s.credentials !== undefined)
    const grants = needsGrants
      ? createGrantBroker({
          baseDir: config.baseDir,
          gatewayKey: await loadOrCreateGatewayKey(config.gateway.signingKeyFile),
          gatewayIssuer: config.gateway.issuer ?? 'sluice',
          ...(config.gateway.actorTokenFrom
            ? { actorTokenFrom: config.gateway.actorTokenFrom }
            : {}),
          redactor,
        })
      : undefined
    const pool = await poolStarting
    engine = new Engine({
      config,
      pool,
      upstreams,
      policy,
      redactor,
      log,
      store,
      ...(lock ? { lock } : {}),
      ...(grants ? { grants } : {}),
      ...(audit ? { audit } : {}),
      ...(vault ? { vault } : {}),
    })
    await engine.start()
    // Gauges read live state at scrape time.
    const started = engine
    closers.push(
      wrapSync(metrics.poolSize.addCallback(() => [{ labels: {}, value: pool.stats().ready }])),
      wrapSync(
        metrics.executionsRunning.addCallback(() => [
          { labels: {}, value: started.health().executions.running },
        ]),
      ),
      wrapSync(
        metrics.executionsQueued.addCallback(() => [
          { labels: {}, value: started.health().executions.queued },
        ]),
      ),
      wrapSync(
        metrics.upstreamUp.addCallback(() =>
          Object.entries(started.health().upstreams).map(([server, h]) => ({
            labels: { server },
            value: h.state === 'ready' ? 1 : 0,
          })),
        ),
      ),
      wrapSync(
        metrics.upstreamRestarts.addCallback(() =>
          Object.entries(upstreams.health()).map(([server, h]) => ({
            labels: { server },
            value: h.restarts,
          })),
        ),
      ),
    )
    const runtime: Runtime = {
      config,
      engine,
      policy,
      ...(lock ? { lock } : {}),
      ...(audit ? { audit } : {}),
      async close() {
        for (const close of closers.reverse()) {
          try {
            await close()
          } catch (cause) {
            log('warn', 'error while shutting down', {
              error: cause instanceof Error ? cause.message : String(cause),
            })
          }
        }
      },
    }
    return runtime
  } catch (cause) {
    for (const close of closers.reverse()) await close().catch(() => undefined)
    throw cause
  }
}

function wrapSync(release: () => unknown): () => Promise<void> {
  return async () => {
    release()
  }
}

/** Policies are checked against the config that uses them: a label it never declares is a typo. */
export function policyOptionsFor(config: Config): LoadPolicyOptions {
  return { labels: { declared: declaredLabels(config), configFile: config.file ?? '<inline>' } }
}

function loadPolicySet(config: Config, options: ComposeOptions, log: LogFn): PolicySet {
  if (config.policies && config.policies.length > 0)
    return loadPolicies(config.policies, policyOptionsFor(config))
  if (options.allowAllWithoutPolicies) {
    log('warn', 'no policies configured: every configured tool is allowed for the local principal')
  }
  return allowAllPolicy()
}
