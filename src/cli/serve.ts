/**
 * `sluice serve` (HTTP gateway) and `sluice stdio` (the same MCP server over stdio).
 *
 * @module
 */
import { createTokenVerifier, metadataWarnings } from '../auth/index.js'
import { loadConfig, type Config } from '../config/index.js'
import { applyHeapGrowth } from './heap.js'
import { SluiceError } from '../errors.js'
import { buildApp, listen, startStdio } from '../gateway/index.js'
import { renderPrometheus } from '../telemetry/index.js'
import { compose, startTelemetryFor, stderrLog } from './compose.js'
import { ConfigReloader, loadChecked } from './reload.js'
import { usage, type Command } from './index.js'

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/**
 * The gateway's public base URL: `--public-url`, else the bound address. With `--port 0` the port
 * is known only after listening, so none is given and the gateway derives links from the identity
 * audience or the request's Host.
 */
function publicUrlOf(
  flag: string | undefined,
  config: Config,
  host: string,
  port: number,
): string | undefined {
  if (flag !== undefined) {
    try {
      new URL(flag)
    } catch {
      throw usage(
        `--public-url: expected an absolute URL such as https://mcp.example.com, got ${flag}`,
      )
    }
    return flag
  }
  if (port === 0) return undefined
  const scheme = config.gateway.tls === undefined ? 'http' : 'https'
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`
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

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve the MCP gateway over Streamable HTTP at /mcp',
  usage:
    'sluice serve [--config FILE] [--host 127.0.0.1] [--port 8787] [--insecure-dev] [--public-url URL]',
  description:
    'Streamable HTTP MCP at /mcp, with /healthz, /readyz, /metrics and /.well-known/oauth-protected-resource (RFC 9728). Needs identity and policies in the config, unless --insecure-dev on loopback. Reloads policies, lock, limits and JWKS files on change or SIGHUP; drains on SIGTERM. Logs JSON lines on stderr; a config that does not load is one line there, and exit 2.',
  examples: [
    'sluice serve --config examples/demo/sluice.yaml',
    'sluice serve --config sluice.yaml --host 0.0.0.0 --port 8787 --public-url https://mcp.example.com',
    'sluice serve --insecure-dev --port 0',
  ],
  options: {
    config: { type: 'string', short: 'c' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', short: 'p', default: '8787' },
    'insecure-dev': { type: 'boolean' },
    'public-url': { type: 'string' },
  },
  async run({ values }) {
    const file = values.config as string | undefined
    const host = values.host as string
    const port = Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw usage(`--port: expected 0..65535, got ${String(values.port)}`)
    const insecureDev = values['insecure-dev'] === true
    if (insecureDev && !LOOPBACK.has(host)) {
      throw usage(
        `--insecure-dev serves without authentication and is allowed only on loopback, not on ${host}`,
      )
    }
    // The config with everything it references, checked; a reload later checks the same way.
    const checked =
      file === undefined ? undefined : await loadChecked(file, { requirePolicies: !insecureDev })
    const config = checked?.config ?? loadConfig(undefined)
    if (!config.identity && !insecureDev) {
      throw new SluiceError(
        'CONFIG_INVALID',
        `${config.file ?? 'config'}: identity: required by \`sluice serve\` (or pass --insecure-dev on loopback for local development)`,
      )
    }
    if ((!config.policies || config.policies.length === 0) && !insecureDev) {
      throw new SluiceError(
        'CONFIG_INVALID',
        `${config.file ?? 'config'}: policies: required by \`sluice serve\` (or pass --insecure-dev on loopback to allow every tool)`,
      )
    }
    if (config.identity)
      for (const warning of metadataWarnings(config.identity)) stderrLog('warn', warning)
    applyHeapGrowth(config.gateway.heapGrowthPercent)
    const telemetry = await startTelemetryFor(config)
    const runtime = await compose(config, {
      allowAllWithoutPolicies: insecureDev,
      ...(checked
        ? { loaded: { policy: checked.policy, ...(checked.lock ? { lock: checked.lock } : {}) } }
        : {}),
    })
    // Reloads swap the verifier behind this one (new issuer keys), and the engine's generation.
    let verifier =
      checked?.verifier ?? (config.identity ? createTokenVerifier(config.identity) : undefined)
    const reloader =
      checked === undefined || file === undefined
        ? undefined
        : new ConfigReloader({
            file,
            current: checked,
            requirePolicies: !insecureDev,
            log: stderrLog,
            apply: async (next) => {
              await runtime.engine.reload(next)
              verifier = next.verifier
            },
          })
    const publicUrl = publicUrlOf(values['public-url'] as string | undefined, config, host, port)
    const app = buildApp({
      config,
      engine: runtime.engine,
      ...(verifier ? { verifier: { verify: (header) => verifier!.verify(header) } } : {}),
      ...(reloader ? { configHash: () => reloader.current.hash } : {}),
      metrics: renderPrometheus,
      insecureDev,
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
      const left = await drain(
        runtime.engine,
        (reloader?.current.config ?? config).shutdown.drainMs,
      )
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
  },
}

export const stdioCommand: Command = {
  name: 'stdio',
  summary: 'Serve the MCP gateway over stdio (principal from the config)',
  usage: 'sluice stdio [--config FILE]',
  description:
    'The same MCP server on stdin/stdout, for an MCP client that starts sluice as a child process. The principal is identity.local (default local-user), never the client. A config that does not load is one line on stderr, and exit 2.',
  examples: [
    'sluice stdio --config examples/demo/sluice.yaml',
    '# in an MCP client config: { "mcpServers": { "sluice": { "command": "npx", "args": ["sluice", "stdio", "--config", "/abs/path/sluice.yaml"] } } }',
  ],
  options: {
    config: { type: 'string', short: 'c' },
  },
  async run({ values }) {
    const config = loadConfig(values.config as string | undefined)
    const telemetry = await startTelemetryFor(config)
    const runtime = await compose(config, { allowAllWithoutPolicies: true })
    try {
      const server = await startStdio({ config, engine: runtime.engine })
      await Promise.race([server.closed, untilSignal()])
      return 0
    } finally {
      await runtime.close()
      await telemetry.shutdown().catch(() => undefined)
    }
  },
}
