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
import { nearest } from '../text.js'
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

/** The schema node inside a zod schema, for one config path (unions: every branch). */
function schemasAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): z.core.$ZodType[] {
  const def = schema._zod.def as unknown as {
    type: string
    innerType?: z.core.$ZodType
    in?: z.core.$ZodType
    shape?: Record<string, z.core.$ZodType>
    valueType?: z.core.$ZodType
    element?: z.core.$ZodType
    options?: z.core.$ZodType[]
  }
  switch (def.type) {
    case 'default':
    case 'optional':
    case 'nullable':
    case 'prefault':
      return schemasAt(def.innerType!, path)
    case 'pipe':
      return schemasAt(def.in!, path)
    case 'union':
      return def.options!.flatMap((o) => schemasAt(o, path))
    default:
      break
  }
  if (path.length === 0) return [schema]
  const [head, ...rest] = path
  if (def.type === 'object') {
    const child = def.shape![String(head)]
    return child === undefined ? [] : schemasAt(child, rest)
  }
  if (def.type === 'record') return schemasAt(def.valueType!, rest)
  if (def.type === 'array') return schemasAt(def.element!, rest)
  return []
}

/** The keys the config schema knows at `path` (every branch of a union). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  const keys = schemasAt(configSchema, path).flatMap((node) => {
    const shape = (node._zod.def as { shape?: Record<string, unknown> }).shape
    return shape === undefined ? [] : Object.keys(shape)
  })
  return [...new Set(keys)]
}

/**
 * A did-you-mean for an unknown key: a typo by edit distance, else a known key that shares a
 * long stem (`timeoutSeconds` → `timeoutMs`: units live in the names).
 */
function suggestKey(key: string, known: readonly string[]): string | undefined {
  const typo = nearest(key, known)
  if (typo !== undefined) return typo
  const stem = (a: string, b: string): number => {
    let n = 0
    while (n < a.length && n < b.length && a[n]!.toLowerCase() === b[n]!.toLowerCase()) n++
    return n
  }
  let best: string | undefined
  let bestStem = 4
  for (const candidate of known) {
    const n = stem(key, candidate)
    if (n > bestStem) {
      best = candidate
      bestStem = n
    }
  }
  return best
}

interface Problem {
  path: readonly PropertyKey[]
  text: string
  /** For an unknown key: the known key it probably means. */
  suggests?: string
  /** The issue is a missing value (`received undefined`). */
  missing?: boolean
}

function describeIssue(issue: z.core.$ZodIssue): Problem[] {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // Report the branch the user most likely meant: the one with the fewest problems once a
    // typo and the key it misspells count as one (`ulr:` is an HTTP entry with a typo, not a
    // stdio entry without `command`).
    const branches = issue.errors
      .filter((errors) => errors.length > 0)
      .map((errors) =>
        dedupe(
          errors.flatMap((inner) =>
            describeIssue({ ...inner, path: [...issue.path, ...inner.path] }),
          ),
        ),
      )
    if (branches.length > 0) return branches.reduce((a, b) => (b.length < a.length ? b : a))
  }
  const where = formatPath(issue.path)
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(issue.path)
    return issue.keys.map((key) => {
      const suggests = suggestKey(key, known)
      return {
        path: issue.path,
        text: `${where}: unknown key "${key}"${suggests === undefined ? '' : ` (did you mean "${suggests}"?)`}`,
        ...(suggests === undefined ? {} : { suggests }),
      }
    })
  }
  const missing = issue.code === 'invalid_type' && issue.input === undefined
  return [
    {
      path: issue.path,
      text: `${where}: ${issue.message.replace(/^Invalid input: /, '')}`,
      ...(missing ? { missing } : {}),
    },
  ]
}

/**
 * A required key reported missing next to an unknown key that means it (`comand` for
 * `command`) is one mistake, reported once, as the typo.
 */
function dedupe(problems: readonly Problem[]): Problem[] {
  const meant = new Set(
    problems
      .filter((p) => p.suggests !== undefined)
      .map((p) => formatPath([...p.path, p.suggests!])),
  )
  return problems.filter((p) => !(p.missing && meant.has(formatPath(p.path))))
}

/** The problems of one failed parse, one text each. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return dedupe(issues.flatMap(describeIssue)).map((p) => p.text)
}

/**
 * One line, whatever the number of problems: `sluice stdio` under an MCP client, a container log
 * or a systemd unit shows the last line of stderr, and a start that failed must say why there.
 */
function configError(file: string, problems: string[], cause?: unknown): SluiceError {
  return new SluiceError('CONFIG_INVALID', `invalid config ${file}: ${problems.join('; ')}`, {
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
  if (!parsed.success) throw configError(file, describeIssues(parsed.error.issues), parsed.error)
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
