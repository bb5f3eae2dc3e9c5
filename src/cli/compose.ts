/**
 * The composition root shared by every command that runs code: config → sandbox pool, upstreams,
 * lock, policy, grants, audit → engine. Each piece is released in `close()`, in reverse order.
 *
 * @module
 */
import { AuditLog } from '../audit/index.js'
import { createGrantBroker, loadOrCreateGatewayKey } from '../auth/index.js'
import { effectiveExporter, readVaultKey, type Config } from '../config/index.js'
import { startTelemetry, type TelemetryHandle } from '../telemetry/sdk.js'
import { Engine } from '../engine/index.js'
import { StoreVault, type Vault } from '../guard/index.js'
import { allowAllPolicy, loadPolicies, type PolicySet } from '../policy/index.js'
import { readLock, type LockFile } from '../registry/index.js'
import { SandboxPool } from '../sandbox/index.js'
import { MemoryStore, RedisStore, type SharedStore } from '../store/index.js'
import { configureAttributes, metrics } from '../telemetry/index.js'
import { stderrLog, type LogFn } from './log.js'
import { policyOptionsFor } from './reload.js'
import { startUpstreams, type StartedUpstreams } from './upstreams.js'

export type { LogFn } from './log.js'
export { stderrLog } from './log.js'
export { CONNECT_TIMEOUT_MS, staticSessionHeaders } from './upstreams.js'

/** Starts span export as the config (or the standard OTEL_* variables) says. */
async function startTelemetryFor(config: Config) {
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
  /**
   * The config's upstreams, started already (`startUpstreams`, before the command imported this
   * module). The runtime owns them from here: `close()` closes them, and so does a failed start.
   */
  upstreams?: StartedUpstreams
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
  const closers: Array<() => Promise<void>> = []
  try {
    const policy = options.loaded?.policy ?? loadPolicySet(config, options, log)
    const lock = options.loaded
      ? options.loaded.lock
      : config.lock
        ? await readLock(
            config.lock.file,
            config.lock.publicKeyFile ? { publicKeyFile: config.lock.publicKeyFile } : {},
          )
        : undefined
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
    // Started before the pool by the caller, or now: each server's process starts while the
    // sandbox pool warms up.
    const early = options.upstreams ?? startUpstreams(config, log)
    closers.push(() => early.close())
    const { upstreams, redactor } = early
    early.onToolsChanged((server) => void engine?.refresh(server))
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
    // Given upstreams are closed even when the start failed before their closer was pushed.
    await options.upstreams?.close().catch(() => undefined)
    throw cause
  }
}

/**
 * Starts span export (`startTelemetryFor`), then composes the runtime; when the compose fails,
 * the telemetry is shut down again. The caller closes both: the runtime first, so its last spans
 * are exported.
 */
export async function startRuntime(
  config: Config,
  options: ComposeOptions,
): Promise<{ runtime: Runtime; telemetry: TelemetryHandle }> {
  const telemetry = await startTelemetryFor(config)
  try {
    return { runtime: await compose(config, options), telemetry }
  } catch (cause) {
    await telemetry.shutdown().catch(() => undefined)
    throw cause
  }
}

function wrapSync(release: () => unknown): () => Promise<void> {
  return async () => {
    release()
  }
}

function loadPolicySet(config: Config, options: ComposeOptions, log: LogFn): PolicySet {
  if (config.policies && config.policies.length > 0)
    return loadPolicies(config.policies, policyOptionsFor(config))
  if (options.allowAllWithoutPolicies) {
    log('warn', 'no policies configured: every configured tool is allowed for the local principal')
  }
  return allowAllPolicy()
}
