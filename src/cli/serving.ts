/**
 * The lifetime of a gateway once its config is read and its upstreams are starting: checks what
 * the config references, composes the runtime, serves (HTTP or stdio), and drains on a signal.
 * `serve.ts` imports this module only after it has spawned the upstreams, so the engine, the
 * sandbox and the HTTP stack load while the servers boot.
 *
 * @module
 */
import { createTokenVerifier, metadataWarnings } from '../auth/index.js'
import type { Config } from '../config/index.js'
import { buildApp, listen, startStdio } from '../gateway/index.js'
import { renderPrometheus } from '../telemetry/index.js'
import { startRuntime } from './compose.js'
import { applyHeapGrowth } from './heap.js'
import { stderrLog } from './log.js'
import { ConfigReloader, loadChecked } from './reload.js'
import type { StartedUpstreams } from './upstreams.js'

/** What `sluice serve` was asked for on its command line, checked. */
export interface ServeFlags {
  /** The config file; undefined with `--insecure-dev` alone (defaults, no servers). */
  file: string | undefined
  host: string
  port: number
  insecureDev: boolean
  /** `--public-url`, an absolute URL. */
  publicUrl: string | undefined
}

/**
 * The gateway's public base URL: `--public-url`, else the bound address. With `--port 0` the port
 * is known only after listening, so none is given and the gateway derives links from the identity
 * audience or the request's Host.
 */
function publicUrlOf(flags: ServeFlags, config: Config): string | undefined {
  if (flags.publicUrl !== undefined) return flags.publicUrl
  if (flags.port === 0) return undefined
  const scheme = config.gateway.tls === undefined ? 'http' : 'https'
  const host = flags.host
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${flags.port}`
}

/** Resolves when the process is asked to stop. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals) => resolve(signal)
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
  })
}

/** Exit codes after a second signal: 128 + the signal's number, as shells report them. */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 }

/**
 * A second SIGINT or SIGTERM while draining ends the process at once: an operator (or a
 * Kubernetes grace period running out) has decided.
 */
function exitOnSecondSignal(): void {
  const now = (signal: NodeJS.Signals) => {
    stderrLog('warn', `received ${signal} again: exiting without waiting for running executions`)
    process.exit(SIGNAL_EXIT[signal] ?? 1)
  }
  process.once('SIGINT', now)
  process.once('SIGTERM', now)
}

/**
 * Graceful drain: `/readyz` turns 503 and new executions are refused with `OVERLOADED` at once
 * (the engine's admission drains); running executions get `shutdown.drainMs` to finish. Resolves
 * with how many were still running when the time was up (0 when all finished).
 */
async function drain(
  engine: { drain(): void; idle(): Promise<void>; health(): { executions: { running: number } } },
  drainMs: number,
): Promise<number> {
  engine.drain()
  let timer: NodeJS.Timeout | undefined
  const timeUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainMs)
  })
  try {
    await Promise.race([engine.idle(), timeUp])
  } finally {
    clearTimeout(timer)
  }
  return engine.health().executions.running
}

/**
 * Serves `config` over HTTP until SIGINT or SIGTERM, then drains. Owns `upstreams`: they are
 * closed on every way out, a failed start included. Resolves with the exit code.
 */
export async function serveHttp(
  config: Config,
  flags: ServeFlags,
  upstreams: StartedUpstreams,
): Promise<number> {
  const { checked, runtime, telemetry } = await upstreams.closeOnFailure(async () => {
    // Everything the config references, checked; a reload later checks the same way.
    const checked =
      flags.file === undefined
        ? undefined
        : await loadChecked(flags.file, { requirePolicies: !flags.insecureDev, config })
    if (config.identity)
      for (const warning of metadataWarnings(config.identity)) stderrLog('warn', warning)
    applyHeapGrowth(config.gateway.heapGrowthPercent)
    const started = await startRuntime(config, {
      allowAllWithoutPolicies: flags.insecureDev,
      upstreams,
      ...(checked
        ? { loaded: { policy: checked.policy, ...(checked.lock ? { lock: checked.lock } : {}) } }
        : {}),
    })
    return { checked, ...started }
  })
  const { file, host, port } = flags
  // Reloads swap the verifier behind this one (new issuer keys), and the engine's generation.
  let verifier =
    checked?.verifier ?? (config.identity ? createTokenVerifier(config.identity) : undefined)
  const reloader =
    checked === undefined || file === undefined
      ? undefined
      : new ConfigReloader({
          file,
          current: checked,
          requirePolicies: !flags.insecureDev,
          log: stderrLog,
          apply: async (next) => {
            await runtime.engine.reload(next)
            verifier = next.verifier
          },
        })
  const publicUrl = publicUrlOf(flags, config)
  const app = buildApp({
    config,
    engine: runtime.engine,
    ...(verifier ? { verifier: { verify: (header) => verifier!.verify(header) } } : {}),
    ...(reloader ? { configHash: () => reloader.current.hash } : {}),
    metrics: renderPrometheus,
    insecureDev: flags.insecureDev,
    host,
    ...(publicUrl === undefined ? {} : { publicUrl }),
    logger: true,
  })
  // Listening for SIGTERM before the "listening" line goes out: a supervisor (or a test) that
  // stops the gateway as soon as it reads that line must get a drain and exit 0, not the
  // default action of a signal nobody handles yet.
  const stopping = untilSignal()
  try {
    // Prints the real URL on stderr (with --port 0, the port the OS picked).
    await listen(app, { host, port })
    reloader?.start()
    const signal = await stopping
    reloader?.close()
    exitOnSecondSignal()
    const running = runtime.engine.health().executions.running
    stderrLog(
      'info',
      `received ${signal}: draining (${running} running, up to ${config.shutdown.drainMs} ms)`,
    )
    const left = await drain(runtime.engine, (reloader?.current.config ?? config).shutdown.drainMs)
    if (left > 0)
      stderrLog(
        'warn',
        `shutdown.drainMs passed with ${left} executions still running; stopping them`,
      )
    else stderrLog('info', 'drained: no execution is running; shutting down')
    return 0
  } finally {
    await app.close().catch(() => undefined)
    await runtime.close()
    await telemetry.shutdown().catch(() => undefined)
  }
}

/**
 * Serves `config` over stdio until the client closes the stream or a signal comes. Owns
 * `upstreams`, as `serveHttp` does.
 */
export async function serveStdio(config: Config, upstreams: StartedUpstreams): Promise<number> {
  const { runtime, telemetry } = await upstreams.closeOnFailure(() =>
    startRuntime(config, { allowAllWithoutPolicies: true, upstreams }),
  )
  try {
    const server = await startStdio({ config, engine: runtime.engine })
    await Promise.race([server.closed, untilSignal()])
    return 0
  } finally {
    await runtime.close()
    await telemetry.shutdown().catch(() => undefined)
  }
}
