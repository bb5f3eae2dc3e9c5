/**
 * Loading a config file: parse YAML (JSON is YAML), validate strictly, resolve paths against the
 * file's folder, refuse unsafe settings, deep-freeze. Every error names the file, the path inside
 * it and what was expected.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { SluiceError } from '../errors.js'
import {
  configSchema,
  SERVER_NAME_PATTERN,
  type RawConfig,
  type ServerConfig,
  type Limits,
} from './schema.js'

/** A validated, path-resolved, deep-frozen config. */
export interface Config extends Omit<RawConfig, 'servers' | 'mcpServers' | 'limits'> {
  /** Absolute path of the file, or undefined for the built-in default. */
  readonly file: string | undefined
  /** Folder that relative paths were resolved against. */
  readonly baseDir: string
  readonly servers: Readonly<Record<string, ServerConfig>>
  readonly limits: Readonly<Limits>
}

/** Deep-freezes a plain data tree. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)'
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('')
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // Report the branch the user most likely meant: the one with the fewest problems
    // (a stdio entry with a bad `command` should not be told that `url` is missing).
    const best = issue.errors.reduce((a, b) => (b.length < a.length ? b : a))
    if (best.length > 0) {
      return best
        .map((inner) => describeIssue({ ...inner, path: [...issue.path, ...inner.path] }))
        .join('\n  - ')
    }
  }
  const where = formatPath(issue.path)
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
  }
  return `${where}: ${issue.message.replace(/^Invalid input: /, '')}`
}

function configError(file: string, problems: string[], cause?: unknown): SluiceError {
  const head = `invalid config ${file}`
  return new SluiceError('CONFIG_INVALID', `${head}:\n  - ${problems.join('\n  - ')}`, {
    cause,
    details: { file, problems },
  })
}

/**
 * Validates an already-parsed config object. `file` is used in messages and `baseDir` to
 * resolve relative paths.
 */
export function parseConfig(input: unknown, file = '<inline>', baseDir = process.cwd()): Config {
  const parsed = configSchema.safeParse(input ?? {})
  if (!parsed.success) throw configError(file, parsed.error.issues.map(describeIssue), parsed.error)
  const raw = parsed.data
  const problems: string[] = []

  if (raw.servers && raw.mcpServers) {
    problems.push('servers, mcpServers: give one of them (mcpServers is an alias of servers)')
  }
  const servers: Record<string, ServerConfig> = { ...(raw.servers ?? raw.mcpServers ?? {}) }
  const key = raw.servers ? 'servers' : 'mcpServers'
  for (const [name, server] of Object.entries(servers)) {
    if (!SERVER_NAME_PATTERN.test(name)) {
      problems.push(
        `${key}.${name}: a server name must match ${SERVER_NAME_PATTERN} (it becomes tools.<name>)`,
      )
    }
    if (server.credentials?.grant === 'passthrough') {
      problems.push(
        `${key}.${name}.credentials.grant: "passthrough" is refused: the caller's token never leaves the gateway; use token-exchange or jwt`,
      )
    }
    if ('command' in server) {
      const at = `${key}.${name}`
      try {
        servers[name] = {
          ...server,
          command: expandVars(server.command, baseDir),
          args: server.args.map((a) => expandVars(a, baseDir)),
          env: Object.fromEntries(
            Object.entries(server.env).map(([k, v]) => [k, expandVars(v, baseDir)]),
          ),
          ...(server.cwd !== undefined
            ? { cwd: resolvePath(baseDir, expandVars(server.cwd, baseDir)) }
            : {}),
        }
      } catch (cause) {
        problems.push(`${at}: ${(cause as Error).message}`)
      }
    } else {
      try {
        servers[name] = { ...server, url: expandVars(server.url, baseDir) }
      } catch (cause) {
        problems.push(`${key}.${name}.url: ${(cause as Error).message}`)
      }
    }
    if (server.disabled) delete servers[name]
  }
  // Identifiers collide when two names differ only by characters that sanitise alike.
  const seen = new Map<string, string>()
  for (const name of Object.keys(servers)) {
    const ident = name.replace(/-/g, '_')
    const other = seen.get(ident)
    if (other !== undefined) {
      problems.push(`${key}.${name}: collides with "${other}" as tools.${ident}; rename one`)
    }
    seen.set(ident, name)
  }
  if (problems.length > 0) throw configError(file, problems)

  const r = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : resolvePath(baseDir, p)
  const config: Config = {
    file: file === '<inline>' ? undefined : file,
    baseDir,
    servers,
    policies: raw.policies?.map((p) => resolvePath(baseDir, p)),
    limits: raw.limits,
    lock: raw.lock && {
      ...raw.lock,
      file: resolvePath(baseDir, raw.lock.file),
      publicKeyFile: r(raw.lock.publicKeyFile),
    },
    identity: raw.identity && {
      ...raw.identity,
      issuers: raw.identity.issuers.map((i) => ({ ...i, jwksFile: r(i.jwksFile) })),
    },
    telemetry: raw.telemetry,
    audit: raw.audit && {
      ...raw.audit,
      file: resolvePath(baseDir, raw.audit.file),
      signingKeyFile: r(raw.audit.signingKeyFile),
    },
    sandbox: raw.sandbox,
    shutdown: raw.shutdown,
    gateway: {
      ...raw.gateway,
      signingKeyFile: r(raw.gateway.signingKeyFile),
      tls: raw.gateway.tls && {
        ...raw.gateway.tls,
        certFile: resolvePath(baseDir, raw.gateway.tls.certFile),
        keyFile: resolvePath(baseDir, raw.gateway.tls.keyFile),
        caFile: r(raw.gateway.tls.caFile),
      },
    },
  }
  return deepFreeze(config)
}

/**
 * Expands `${VAR}` and `${VAR:-default}` from the environment, and `${SLUICE_CONFIG_DIR}` to the
 * config file's folder, in server commands, args, env values, cwd and urls (as `.mcp.json` files
 * commonly do). A default may itself hold references (`${A:-${SLUICE_CONFIG_DIR}/a}`); values
 * taken from the environment are never expanded again. An unset variable without a default is an
 * error, never an empty string.
 */
export function expandVars(text: string, baseDir: string): string {
  return expandFrom(text, 0, baseDir, false, true).value
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*/

/**
 * Expands from `start`; inside a default (`nested`) it stops at the `}` that closes it. A default
 * is only scanned, not evaluated, when its variable is set (`evaluate` false).
 */
function expandFrom(
  text: string,
  start: number,
  baseDir: string,
  nested: boolean,
  evaluate: boolean,
): { value: string; end: number } {
  let out = ''
  let i = start
  while (i < text.length) {
    if (nested && text[i] === '}') return { value: out, end: i }
    const name = text.startsWith('${', i) ? VAR_NAME.exec(text.slice(i + 2))?.[0] : undefined
    if (name === undefined) {
      out += text[i]
      i += 1
      continue
    }
    let j = i + 2 + name.length
    let fallback: string | undefined
    if (text.startsWith(':-', j)) {
      const inner = expandFrom(text, j + 2, baseDir, true, evaluate && !isSet(name))
      fallback = inner.value
      j = inner.end
    }
    if (text[j] !== '}') {
      // Not a complete reference: keep the text as it is.
      out += text[i]
      i += 1
      continue
    }
    if (evaluate) out += resolveVar(name, fallback, baseDir)
    i = j + 1
  }
  if (nested) throw new Error(`unterminated \${...} in ${JSON.stringify(text)}`)
  return { value: out, end: i }
}

function isSet(name: string): boolean {
  const value = process.env[name]
  return name === 'SLUICE_CONFIG_DIR' || (value !== undefined && value !== '')
}

function resolveVar(name: string, fallback: string | undefined, baseDir: string): string {
  if (name === 'SLUICE_CONFIG_DIR') return baseDir
  const value = process.env[name]
  if (value !== undefined && value !== '') return value
  if (fallback !== undefined) return fallback
  throw new Error(`\${${name}} is not set (use \${${name}:-default} for a default)`)
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p)
}

/**
 * Reads and validates a config file. Without a file, returns the default config: no servers,
 * no policies, default limits.
 *
 * @throws SluiceError `CONFIG_INVALID` naming the file, the path and what was expected.
 */
export function loadConfig(file?: string): Config {
  if (file === undefined) return parseConfig({}, '<inline>', process.cwd())
  const abs = resolve(file)
  let text: string
  try {
    text = readFileSync(abs, 'utf8')
  } catch (cause) {
    const reason =
      (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'cannot read file'
    throw configError(abs, [reason], cause)
  }
  let data: unknown
  try {
    data = parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (cause) {
    const e = cause as { message?: string; linePos?: Array<{ line: number; col: number }> }
    const pos = e.linePos?.[0]
    const where = pos ? `line ${pos.line}, column ${pos.col}` : '(parse)'
    throw configError(
      abs,
      [`${where}: not valid YAML or JSON: ${(e.message ?? '').split('\n')[0]}`],
      cause,
    )
  }
  return parseConfig(data, abs, dirname(abs))
}

/** Reads a secret reference (`env:NAME` or `file:PATH`) at the moment it is needed. */
export function readSecretRef(ref: string, baseDir: string): string {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4)
    const value = process.env[name]
    if (value === undefined || value === '') {
      throw new SluiceError(
        'CONFIG_INVALID',
        `secret ${ref}: environment variable ${name} is not set`,
      )
    }
    return value
  }
  if (ref.startsWith('file:')) {
    const path = resolvePath(baseDir, ref.slice(5))
    try {
      return readFileSync(path, 'utf8').trim()
    } catch (cause) {
      throw new SluiceError('CONFIG_INVALID', `secret ${ref}: cannot read ${path}`, { cause })
    }
  }
  // Never echo the reference: a misplaced inline secret would land in a log.
  throw new SluiceError('CONFIG_INVALID', 'a secret reference must be env:NAME or file:PATH')
}
