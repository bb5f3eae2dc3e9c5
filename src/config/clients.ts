/**
 * Reading the MCP client config files (Claude Desktop, Claude Code, Cursor, VS Code, Roo, Cline)
 * unchanged. Before the strict schema sees a server entry, the keys those clients add are
 * translated (`transportType` → `type`, `timeout` in seconds → `timeoutMs`) or set aside (to be
 * named in one warning per file), so that a typo of a sluice key still fails with did-you-mean
 * while a client's own bookkeeping does not stop the start.
 *
 * @module
 */
import { HTTP_SERVER_TYPES } from './schema.js'

/**
 * Keys clients write into a server entry that mean nothing to sluice. They are dropped with a
 * warning. `alwaysAllow` / `autoApprove` lists are not honoured: sluice's policy decides what
 * runs; `oauth` / `auth` are not used: sluice's `credentials` grants authenticate upstream.
 */
export const IGNORED_CLIENT_KEYS: readonly string[] = [
  // Roo Code, Cline, Windsurf: tool lists the client runs without asking, or hides.
  'alwaysAllow',
  'autoApprove',
  'disabledTools',
  // Roo Code: files whose change restarts the server.
  'watchPaths',
  // VS Code: development mode, its own sandbox, OAuth client id, gallery bookkeeping.
  'dev',
  'sandboxEnabled',
  'sandbox',
  'oauth',
  'gallery',
  'version',
  // Cursor: OAuth client settings.
  'auth',
]

/** Top-level keys of Claude Desktop's claude_desktop_config.json that are app settings. */
export const IGNORED_CLIENT_TOP_LEVEL_KEYS: readonly string[] = ['globalShortcut', 'preferences']

/** Every transport `type` sluice accepts. */
export const SERVER_TYPES: readonly string[] = ['stdio', ...HTTP_SERVER_TYPES]

/** Roo and Cline write `timeout` in seconds, 1 to 3600; sluice's `timeoutMs` has the same cap. */
export const MAX_CLIENT_TIMEOUT_SECONDS = 3600

/** What was translated or set aside, for the one warning per file. */
export interface ClientKeyReport {
  /** Ignored key → the server paths that had it (`servers.github`). */
  ignored: Map<string, string[]>
  /** Servers with `disabled: true`, skipped. */
  disabled: string[]
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

const list = (values: readonly string[]): string => values.map((v) => `"${v}"`).join(', ')

/**
 * Returns a copy of the raw config with client keys translated or removed, never mutating the
 * input. Problems (a `timeout` out of range, a `type` sluice does not know) are pushed with the
 * path in the file, in the loader's one-line format.
 */
export function normaliseClientKeys(
  input: unknown,
  problems: string[],
): { input: unknown; report: ClientKeyReport } {
  const report: ClientKeyReport = { ignored: new Map(), disabled: [] }
  if (!isPlainObject(input)) return { input, report }
  const out: Record<string, unknown> = { ...input }
  for (const key of IGNORED_CLIENT_TOP_LEVEL_KEYS) {
    if (!(key in out)) continue
    delete out[key]
    report.ignored.set(key, ['top level'])
  }
  for (const key of ['servers', 'mcpServers'] as const) {
    const servers = input[key]
    if (!isPlainObject(servers)) continue
    const copy: Record<string, unknown> = {}
    for (const [name, entry] of Object.entries(servers)) {
      copy[name] = isPlainObject(entry)
        ? normaliseEntry(entry, `${key}.${name}`, report, problems)
        : entry
    }
    out[key] = copy
  }
  return { input: out, report }
}

function normaliseEntry(
  entry: Record<string, unknown>,
  at: string,
  report: ClientKeyReport,
  problems: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...entry }
  for (const key of IGNORED_CLIENT_KEYS) {
    if (!(key in out)) continue
    delete out[key]
    const paths = report.ignored.get(key) ?? []
    paths.push(at)
    report.ignored.set(key, paths)
  }
  if (out.disabled === true) report.disabled.push(at)

  if ('transportType' in out) {
    const transportType = out.transportType
    delete out.transportType
    if (typeof transportType !== 'string' || !SERVER_TYPES.includes(transportType)) {
      problems.push(`${at}.transportType: expected one of ${list(SERVER_TYPES)}`)
    } else if (out.type !== undefined && out.type !== transportType) {
      problems.push(
        `${at}: "transportType" is "${transportType}" but "type" is "${String(out.type)}"; keep one`,
      )
    } else {
      out.type = transportType
    }
  }
  if (out.type !== undefined) {
    const type = out.type
    if (typeof type !== 'string' || !SERVER_TYPES.includes(type)) {
      problems.push(`${at}.type: expected one of ${list(SERVER_TYPES)}`)
      delete out.type
    } else if (type === 'stdio' && !('command' in out)) {
      problems.push(
        `${at}: type "stdio" needs "command" (a remote server has "url" and type "http" or "sse")`,
      )
      // Reported here; without the type the schema would add a second, vaguer problem.
      delete out.type
    } else if (type !== 'stdio' && !('url' in out)) {
      problems.push(
        `${at}: type "${type}" needs "url" (a local server has "command" and type "stdio")`,
      )
      delete out.type
    }
  }

  if ('timeout' in out) {
    const seconds = out.timeout
    delete out.timeout
    if (
      typeof seconds !== 'number' ||
      !Number.isFinite(seconds) ||
      seconds < 1 ||
      seconds > MAX_CLIENT_TIMEOUT_SECONDS
    ) {
      problems.push(
        `${at}.timeout: expected seconds from 1 to ${MAX_CLIENT_TIMEOUT_SECONDS} (Roo/Cline's timeout; sluice's own key is timeoutMs)`,
      )
    } else if ('timeoutMs' in out) {
      problems.push(`${at}: give one of "timeout" (seconds) and "timeoutMs"`)
    } else {
      out.timeoutMs = Math.round(seconds * 1000)
    }
  }
  return out
}

/** The one warning of a file, or undefined when nothing was set aside. */
export function clientKeyWarning(file: string, report: ClientKeyReport): string | undefined {
  const parts: string[] = []
  if (report.ignored.size > 0) {
    const keys = [...report.ignored].map(([key, paths]) => `${key} (${paths.join(', ')})`)
    const policy =
      report.ignored.has('alwaysAllow') || report.ignored.has('autoApprove')
        ? '; sluice policy decides which tools run'
        : ''
    const auth =
      report.ignored.has('oauth') || report.ignored.has('auth')
        ? '; upstream auth comes from credentials grants'
        : ''
    parts.push(`ignored client keys: ${keys.join(', ')}${policy}${auth}`)
  }
  if (report.disabled.length > 0) {
    parts.push(`skipped disabled servers: ${report.disabled.join(', ')}`)
  }
  return parts.length === 0 ? undefined : `config ${file}: ${parts.join('; ')}`
}
