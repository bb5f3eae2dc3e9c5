/**
 * `sluice serve` (HTTP gateway) and `sluice stdio` (the same MCP server over stdio): flags, the
 * config, and the upstreams started at once. The gateway itself is in serving.ts, imported only
 * once the servers' processes are spawned: they boot on the other core while this process loads
 * the engine, the sandbox and the HTTP stack (≈250 ms of imports on this thread).
 *
 * @module
 */
import { loadConfig, type Config } from '../config/index.js'
import { SluiceError } from '../errors.js'
import { usage, type Command } from './index.js'
import { stderrLog } from './log.js'
import type { ServeFlags } from './serving.js'
import { startUpstreams, type StartedUpstreams } from './upstreams.js'

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

function serveFlags(values: Record<string, unknown>): ServeFlags {
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
  const publicUrl = values['public-url'] as string | undefined
  if (publicUrl !== undefined) {
    try {
      new URL(publicUrl)
    } catch {
      throw usage(
        `--public-url: expected an absolute URL such as https://mcp.example.com, got ${publicUrl}`,
      )
    }
  }
  return { file, host, port, insecureDev, publicUrl }
}

/** What `sluice serve` needs in a config, unless `--insecure-dev` stands in for it. */
function requireServeSections(config: Config, insecureDev: boolean): void {
  if (insecureDev) return
  if (!config.identity) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `${config.file ?? 'config'}: identity: required by \`sluice serve\` (or pass --insecure-dev on loopback for local development)`,
    )
  }
  if (!config.policies || config.policies.length === 0) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `${config.file ?? 'config'}: policies: required by \`sluice serve\` (or pass --insecure-dev on loopback to allow every tool)`,
    )
  }
}

/**
 * The rest of the gateway, loaded while `upstreams` start. Spawning first is safe: a server that
 * starts is listed and checked against the lock before any call reaches it, exactly as before;
 * when the config's references (policies, lock, JWKS) fail their check, the servers are stopped.
 */
function loadServing(upstreams: StartedUpstreams): Promise<typeof import('./serving.js')> {
  return upstreams.closeOnFailure(() => import('./serving.js'))
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
    const flags = serveFlags(values)
    const config = loadConfig(flags.file)
    requireServeSections(config, flags.insecureDev)
    const upstreams = startUpstreams(config, stderrLog)
    return (await loadServing(upstreams)).serveHttp(config, flags, upstreams)
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
    const upstreams = startUpstreams(config, stderrLog)
    return (await loadServing(upstreams)).serveStdio(config, upstreams)
  },
}
