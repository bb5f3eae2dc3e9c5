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
import { clientKeyWarning, normaliseClientKeys } from './clients.js'
import { expandVars, maskReferences, type ExpandOptions } from './expand.js'
import {
  configSchema,
  SERVER_NAME_PATTERN,
  type Guardrails,
  type RawConfig,
  type ServerConfig,
  type Limits,
} from './schema.js'

/** A validated, path-resolved, deep-frozen config. */
export interface Config extends Omit<RawConfig, 'servers' | 'mcpServers' | 'inputs' | 'limits'> {
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

function describeIssue(issue: z.core.$ZodIssue, input: unknown): Problem[] {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // Report the branch the user most likely meant: the one with the fewest problems once a
    // typo and the key it misspells count as one (`ulr:` is an HTTP entry with a typo, not a
    // stdio entry without `command`).
    const branches = issue.errors
      .filter((errors) => errors.length > 0)
      .map((errors) =>
        dedupe(
          errors.flatMap((inner) =>
            describeIssue({ ...inner, path: [...issue.path, ...inner.path] }, input),
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
  if (issue.code === 'invalid_value') {
    // A mistyped enum value (`detect: [emial]`) gets its did-you-mean like a mistyped key.
    const value = valueAt(input, issue.path)
    const known = issue.values.filter((v): v is string => typeof v === 'string')
    const suggests = typeof value === 'string' ? nearest(value, known) : undefined
    if (suggests !== undefined) {
      return [
        {
          path: issue.path,
          text: `${where}: unknown value "${String(value)}" (did you mean "${suggests}"?); expected one of ${known.join(', ')}`,
        },
      ]
    }
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
function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string[] {
  return dedupe(issues.flatMap((issue) => describeIssue(issue, input))).map((p) => p.text)
}

/** The value at `path` inside the parsed input, if there is one. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[key]
  }
  return node
}

/**
 * One line, whatever the number of problems: `sluice stdio` under an MCP client, a container log
 * or a systemd unit shows the last line of stderr, and a start that failed must say why there.
 */
export function configError(file: string, problems: string[], cause?: unknown): SluiceError {
  return new SluiceError('CONFIG_INVALID', `invalid config ${file}: ${problems.join('; ')}`, {
    cause,
    details: { file, problems },
  })
}

/** Options of `parseConfig` and `loadConfig`. */
export interface LoadOptions {
  /**
   * Receives the one warning of a file (client keys ignored, disabled servers skipped). Default:
   * a JSON line on stderr in the operator log's format (stdout belongs to results and to stdio).
   */
  onWarning?: (message: string, fields: Record<string, unknown>) => void
}

function stderrWarning(message: string, fields: Record<string, unknown>): void {
  process.stderr.write(
    `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: message, ...fields })}\n`,
  )
}

/**
 * Validates an already-parsed config object. `file` is used in messages and `baseDir` to
 * resolve relative paths.
 */
export function parseConfig(
  input: unknown,
  file = '<inline>',
  baseDir = process.cwd(),
  options: LoadOptions = {},
): Config {
  const problems: string[] = []
  const normalised = normaliseClientKeys(input ?? {}, problems)
  const parsed = configSchema.safeParse(normalised.input)
  if (!parsed.success) {
    throw configError(
      file,
      [...problems, ...describeIssues(parsed.error.issues, normalised.input)],
      parsed.error,
    )
  }
  const raw = parsed.data

  if (raw.servers && raw.mcpServers) {
    problems.push('servers, mcpServers: give one of them (mcpServers is an alias of servers)')
  }
  const servers: Record<string, ServerConfig> = { ...(raw.servers ?? raw.mcpServers ?? {}) }
  const key = raw.servers ? 'servers' : 'mcpServers'
  const expandOptions: ExpandOptions = {
    inputs: new Map((raw.inputs ?? []).map((i) => [i.id, i.description])),
  }
  for (const [name, server] of Object.entries(servers)) {
    // A disabled entry is skipped whole: its variables need not be set (clients do the same).
    if (server.disabled) {
      delete servers[name]
      continue
    }
    if (!SERVER_NAME_PATTERN.test(name)) {
      problems.push(
        `${key}.${name}: a server name must match ${SERVER_NAME_PATTERN} (it becomes tools.<name>)`,
      )
    }
    if (server.credentials?.grant === 'env' && 'url' in server) {
      problems.push(
        `${key}.${name}.credentials.grant: "env" sets environment variables of a server sluice starts; a url server gets a header grant (static, token-exchange, jwt)`,
      )
    }
    if (server.credentials?.grant === 'passthrough') {
      problems.push(
        `${key}.${name}.credentials.grant: "passthrough" is refused: the caller's token never leaves the gateway; use token-exchange or jwt`,
      )
    }
    const expanded = expandServer(server, `${key}.${name}`, name, baseDir, expandOptions, problems)
    if (expanded !== undefined) servers[name] = expanded
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
  problems.push(...resolveForProblems(raw.guardrails, servers), ...vaultKeyProblems(raw))
  if (problems.length > 0) throw configError(file, problems)
  const warning = clientKeyWarning(file, normalised.report)
  if (warning !== undefined) {
    ;(options.onWarning ?? stderrWarning)(warning, {
      file,
      ignoredKeys: [...normalised.report.ignored.keys()],
      disabledServers: normalised.report.disabled,
    })
  }

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
    registry: raw.registry,
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
    store: raw.store,
    guardrails: raw.guardrails,
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
 * A server entry with every `${...}` expanded (command, args, env, envFile, cwd, url, headers),
 * or undefined after pushing a problem that names the exact path. A literal secret in a header is
 * refused before anything is expanded.
 */
function expandServer(
  server: ServerConfig,
  at: string,
  name: string,
  baseDir: string,
  options: ExpandOptions,
  problems: string[],
): ServerConfig | undefined {
  const before = problems.length
  const x = (text: string, path: string): string => {
    try {
      return expandVars(text, baseDir, options)
    } catch (cause) {
      problems.push(`${path}: ${(cause as Error).message}`)
      return text
    }
  }
  let expanded: ServerConfig
  if ('command' in server) {
    const { envFile, ...rest } = server
    const fromFile =
      envFile === undefined
        ? {}
        : readEnvFile(resolvePath(baseDir, x(envFile, `${at}.envFile`)), `${at}.envFile`, problems)
    expanded = {
      ...rest,
      command: x(server.command, `${at}.command`),
      args: server.args.map((a, i) => x(a, `${at}.args[${i}]`)),
      env: {
        ...fromFile,
        ...Object.fromEntries(
          Object.entries(server.env).map(([k, v]) => [k, x(v, `${at}.env.${k}`)]),
        ),
      },
      ...(server.cwd !== undefined
        ? { cwd: resolvePath(baseDir, x(server.cwd, `${at}.cwd`)) }
        : {}),
    }
    // The upstream reads an env grant when it starts the server, far from the config's folder.
    if (server.credentials?.grant === 'env') {
      const env = Object.fromEntries(
        Object.entries(server.credentials.env).map(([k, ref]) => [
          k,
          ref.startsWith('file:') ? `file:${resolvePath(baseDir, ref.slice(5))}` : ref,
        ]),
      )
      expanded = { ...expanded, credentials: { grant: 'env', env } }
    }
  } else {
    const headers: Record<string, string> = {}
    for (const [header, value] of Object.entries(server.headers)) {
      const literal = literalSecretProblem(header, value, name)
      if (literal !== undefined) problems.push(`${at}.headers.${header}: ${literal}`)
      else headers[header] = x(value, `${at}.headers.${header}`)
    }
    const url = x(server.url, `${at}.url`)
    if (problems.length === before && !isHttpUrl(url)) {
      // Not echoed: a URL can carry a token in its query.
      problems.push(`${at}.url: expected an http or https URL`)
    }
    expanded = { ...server, url, headers }
  }
  return problems.length === before ? expanded : undefined
}

function isHttpUrl(text: string): boolean {
  if (!URL.canParse(text)) return false
  const protocol = new URL(text).protocol
  return protocol === 'http:' || protocol === 'https:'
}

/** Header names whose values are credentials: they must come from outside the file. */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|secret|passw|session|credential|auth|signature|key$/i

/** Whether a header's value is a credential (by its name: `Authorization`, `X-Api-Key`, …). */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name)
}

/** `Bearer ${TOKEN}` or `${TOKEN}`: at most an auth scheme word, then references only. */
const REFERENCED_ONLY = /^\s*(?:[A-Za-z][A-Za-z0-9-]*\s+)?\u0000+\s*$/

/**
 * Why a header value is a literal secret, or undefined when it is not. The message never echoes
 * the value: it would land in a log.
 */
function literalSecretProblem(header: string, value: string, server: string): string | undefined {
  if (!isSecretHeader(header)) return undefined
  const { masked, hasDefault } = maskReferences(value)
  if (!hasDefault && REFERENCED_ONLY.test(masked)) return undefined
  const scheme = /^\s*(Bearer|Basic|Token|Bot)\s/i.exec(value)?.[1]
  const variable = `${server.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_TOKEN`
  const prefix = scheme === undefined ? '' : `${scheme} `
  const why = hasDefault
    ? 'a ${VAR:-default} in a secret header puts the secret in the file'
    : 'a literal secret in the file is refused'
  return (
    `${why}; write "${prefix}\${${variable}}" to take it from the environment, or use ` +
    `credentials: { grant: static, header: ${header}${prefix ? `, prefix: "${prefix}"` : ''}, valueFrom: env:${variable} } (or file:PATH)`
  )
}

/**
 * Reads a dotenv file: `KEY=value` lines, `#` comments, an optional `export `, values in single
 * or double quotes. Errors name the line, never its content (it is usually a secret).
 */
function readEnvFile(path: string, at: string, problems: string[]): Record<string, string> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    const reason =
      (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'cannot read file'
    problems.push(`${at}: ${reason}: ${path}`)
    return {}
  }
  const env: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (const [index, line] of lines.entries()) {
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed)
    if (match === null) {
      problems.push(`${at}: line ${index + 1} of ${path} is not KEY=value`)
      continue
    }
    let value = match[2]!
    const quote = value[0]
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1)
      if (quote === '"') value = value.replace(/\\n/g, '\n')
    } else {
      value = value.replace(/\s+#.*$/, '')
    }
    env[match[1]!] = value
  }
  return env
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
export function loadConfig(file?: string, options: LoadOptions = {}): Config {
  if (file === undefined) return parseConfig({}, '<inline>', process.cwd(), options)
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
  return parseConfig(data, abs, dirname(abs), options)
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

/**
 * A tokenising vault in a shared store needs a key: it lives where every replica reads it, and
 * a session's values must not sit there in plaintext. The key itself is read at start.
 */
function vaultKeyProblems(raw: RawConfig): string[] {
  const pii = raw.guardrails.pii
  if (raw.store.redis === undefined || pii?.mode !== 'tokenize' || pii.vaultKeyFrom !== undefined)
    return []
  return [
    'guardrails.pii.vaultKeyFrom: required with store.redis when pii.mode is tokenize: the vault is then kept in Redis, where its values would sit in plaintext, and every replica needs the same key to read the tokens the others made; expected env:NAME or file:PATH holding 32 random bytes as base64 or hex (openssl rand -base64 32)',
  ]
}

/**
 * Each `guardrails.pii.resolveFor` entry names a configured server (the tool part is checked
 * against the live catalogue at start, which only the engine knows).
 */
function resolveForProblems(
  guardrails: Guardrails,
  servers: Record<string, ServerConfig>,
): string[] {
  const names = Object.keys(servers)
  return (guardrails.pii?.resolveFor ?? []).flatMap((entry, i) => {
    const server = entry.slice(0, entry.indexOf('.'))
    if (servers[server] !== undefined) return []
    const suggests = nearest(server, names)
    return [
      `guardrails.pii.resolveFor[${i}]: "${entry}" names no configured server "${server}"${suggests === undefined ? '' : ` (did you mean "${suggests}"?)`}`,
    ]
  })
}
