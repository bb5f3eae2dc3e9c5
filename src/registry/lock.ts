/**
 * The lock file (`sluice.lock.json`): pinned tool definitions per server, with an optional
 * detached JWS signature. Reading is strict: a malformed lock stops the start with the file and
 * the path of the problem; a bad or missing signature (when a key is configured) too.
 *
 * The signature is a detached compact JWS (RFC 7515 appendix F: `header..signature`) over the
 * UTF-8 canonical JSON of the lock without its `signature` member, kept in that member so the
 * lock stays one file.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto'
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import {
  CompactSign,
  base64url,
  calculateJwkThumbprint,
  compactVerify,
  exportJWK,
  type JWK,
} from 'jose'
import { z } from 'zod'
import type { ServerConfig } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type { DefinitionHash, Risk, ToolDefinition } from '../types.js'
import { canonicalJson, hashDefinition, pinnedDefinition } from './canonical.js'
import { serverRisk, toolRisk } from './risk.js'

/** The only lock format version this code reads and writes. */
export const LOCK_VERSION = 1
/** `typ` of the JWS protected header. */
export const LOCK_JWS_TYPE = 'sluice-lock+jws'

/** Where a server comes from: identity only, never secrets (no env, no headers, no URL query). */
export type LockSource =
  { type: 'stdio'; command: string; args: string[] } | { type: 'http'; url: string }

export interface LockTool {
  hash: DefinitionHash
  /** The pinned projection of the definition (exactly what was hashed). */
  definition: ToolDefinition
  /** Scored when the lock was written (`registry/risk.ts`); covered by the signature. */
  risk?: Risk
}

/** Where an entry imported by `sluice registry sync` came from. */
export interface LockOrigin {
  registry: string
  name: string
  version: string
}

/**
 * One server in the lock. `server` is the upstream's `serverInfo`, as `name`/`version` of an MCP
 * registry `server.json`; `source` plays the part of its `packages` (stdio) or `remotes` (http).
 */
export interface LockServerEntry {
  server: { name: string; version: string }
  source: LockSource
  tools: Record<string, LockTool>
  /** The registry entry it was imported from (its exact version). */
  origin?: LockOrigin
  /** Secrets the server needs, by name (`env CRM_TOKEN`, `header X-Api-Key`), never values. */
  secrets?: string[]
  risk?: Risk
}

export interface LockFile {
  lockVersion: typeof LOCK_VERSION
  /** ISO 8601 time of `sluice lock`. */
  generatedAt: string
  servers: Record<string, LockServerEntry>
  /** Detached compact JWS over the canonical JSON of the lock without this member. */
  signature?: string
}

/** What `createLock` needs per server: its config (for the source) and what it listed. */
export interface ServerSnapshot {
  /** The server's config; only its identity (command + args, or URL) goes into the lock. */
  config?: ServerConfig
  /** Alternatively, the source itself. */
  source?: LockSource
  /** `health().serverInfo` of the upstream after listing. */
  serverInfo?: { name: string; version: string } | undefined
  tools: readonly ToolDefinition[]
  origin?: LockOrigin
  /** Secret names the server needs (see `secretsOf`). */
  secrets?: readonly string[]
}

/** A key for signing or verifying, as a Node KeyObject (or a JWK) plus its algorithm. */
export interface LockKey {
  key: KeyObject
  alg: string
}

export interface WriteLockOptions {
  /** Sign with this private key (a KeyObject, a private JWK, or a loaded `LockKey`). */
  signingKey?: KeyObject | JWK | LockKey
  /** Or read the private key from a file (JWK JSON or PKCS#8 PEM). */
  signingKeyFile?: string
}

export interface ReadLockOptions {
  /** Require a valid signature by this public key. */
  publicKey?: KeyObject | JWK | LockKey
  /** Or read the public key from a file (JWK JSON or SPKI PEM; a private key works too). */
  publicKeyFile?: string
}

const HASH_PATTERN = /^sha256:[0-9a-f]{64}$/

const definitionSchema = z.looseObject({
  name: z.string().min(1),
  title: z.string().optional(),
  description: z.string().optional(),
  inputSchema: z.record(z.string(), z.unknown()),
  outputSchema: z.record(z.string(), z.unknown()).optional(),
  annotations: z.record(z.string(), z.unknown()).optional(),
})

const riskSchema = z.strictObject({
  score: z.number().min(0).max(10),
  level: z.enum(['low', 'medium', 'high']),
  reasons: z.array(z.string()),
})

const lockSchema = z.strictObject({
  lockVersion: z.literal(LOCK_VERSION),
  generatedAt: z.string().min(1),
  servers: z.record(
    z.string(),
    z.strictObject({
      server: z.strictObject({ name: z.string(), version: z.string() }),
      source: z.discriminatedUnion('type', [
        z.strictObject({
          type: z.literal('stdio'),
          command: z.string().min(1),
          args: z.array(z.string()),
        }),
        z.strictObject({ type: z.literal('http'), url: z.string().min(1) }),
      ]),
      tools: z.record(
        z.string(),
        z.strictObject({
          hash: z.string().regex(HASH_PATTERN, 'expected "sha256:" and 64 lowercase hex digits'),
          definition: definitionSchema,
          risk: riskSchema.optional(),
        }),
      ),
      origin: z
        .strictObject({ registry: z.string(), name: z.string(), version: z.string() })
        .optional(),
      secrets: z.array(z.string()).optional(),
      risk: riskSchema.optional(),
    }),
  ),
  signature: z
    .string()
    .regex(/^[\w-]+\.\.[\w-]+$/, 'expected a detached compact JWS (header..signature)')
    .optional(),
})

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)'
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('')
}

function lockError(file: string, problems: string[], cause?: unknown): SluiceError {
  return new SluiceError(
    'LOCK_INVALID',
    `invalid lock file ${file}:\n  - ${problems.join('\n  - ')}`,
    {
      cause,
      details: { file, problems },
    },
  )
}

/**
 * The identity of a server for the lock: command and args for stdio, the URL without
 * credentials, query or fragment for HTTP. Env, headers and credentials never go in.
 */
export function lockSourceOf(config: ServerConfig): LockSource {
  if ('url' in config) {
    const url = new URL(config.url)
    url.username = ''
    url.password = ''
    url.search = ''
    url.hash = ''
    return { type: 'http', url: url.toString() }
  }
  return { type: 'stdio', command: config.command, args: [...config.args] }
}

/**
 * Builds a lock from what each server listed. Definitions are stored as their pinned projection.
 *
 * @throws SluiceError `LOCK_INVALID` when a server lists the same tool name twice.
 */
export function createLock(
  snapshot: Record<string, ServerSnapshot>,
  options: {
    generatedAt?: Date
    /** Whether the lock will be signed: an unsigned lock adds to every risk score. */
    signed?: boolean
  } = {},
): LockFile {
  const servers: Record<string, LockServerEntry> = {}
  for (const name of Object.keys(snapshot).sort()) {
    const entry = snapshot[name]!
    const source = entry.source ?? (entry.config ? lockSourceOf(entry.config) : undefined)
    if (source === undefined)
      throw new TypeError(`createLock: server ${name} needs a config or a source`)
    const tools: Record<string, LockTool> = {}
    for (const tool of [...entry.tools].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )) {
      if (Object.hasOwn(tools, tool.name)) {
        throw new SluiceError(
          'LOCK_INVALID',
          `server ${name} lists tool "${tool.name.slice(0, 80)}" twice; refusing to pin it`,
          {
            details: { server: name, tool: tool.name },
          },
        )
      }
      const definition = pinnedDefinition(tool)
      tools[tool.name] = { hash: hashDefinition(tool), definition }
    }
    const facts = { source, secrets: entry.secrets ?? [], signed: options.signed ?? false }
    for (const tool of Object.values(tools)) tool.risk = toolRisk(tool.definition, facts)
    servers[name] = {
      server: {
        name: entry.serverInfo?.name ?? name,
        version: entry.serverInfo?.version ?? 'unknown',
      },
      source,
      tools,
      ...(entry.origin ? { origin: { ...entry.origin } } : {}),
      ...(entry.secrets && entry.secrets.length > 0 ? { secrets: [...entry.secrets] } : {}),
      risk: serverRisk(
        Object.values(tools).map((t) => t.definition),
        facts,
      ),
    }
  }
  return {
    lockVersion: LOCK_VERSION,
    generatedAt: (options.generatedAt ?? new Date()).toISOString(),
    servers,
  }
}

/** The exact bytes a lock signature covers: the canonical JSON of the lock minus `signature`. */
export function lockSigningInput(lock: LockFile): Uint8Array {
  const { signature: _signature, ...unsigned } = lock
  return new TextEncoder().encode(canonicalJson(unsigned))
}

function algOf(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'EdDSA'
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return 'ES256'
      if (curve === 'secp384r1') return 'ES384'
      if (curve === 'secp521r1') return 'ES512'
      throw new SluiceError(
        'SIGNATURE_INVALID',
        `unsupported EC curve ${curve ?? '?'} for a lock key`,
      )
    }
    case 'rsa':
      return 'RS256'
    case 'rsa-pss':
      return 'PS256'
    default:
      throw new SluiceError(
        'SIGNATURE_INVALID',
        `unsupported key type ${key.asymmetricKeyType ?? key.type} for a lock key (use Ed25519, EC or RSA)`,
      )
  }
}

function isLockKey(value: unknown): value is LockKey {
  return typeof value === 'object' && value !== null && 'key' in value && 'alg' in value
}

function toLockKey(input: KeyObject | JWK | LockKey, use: 'sign' | 'verify'): LockKey {
  if (isLockKey(input)) return input
  let key: KeyObject
  if (input instanceof KeyObject) {
    const object = input
    if (object.type === 'secret')
      throw new SluiceError(
        'SIGNATURE_INVALID',
        'a lock key must be asymmetric, not a shared secret',
      )
    key = use === 'verify' && object.type === 'private' ? createPublicKey(object) : object
  } else {
    const jwk = input
    if (jwk.kty === 'oct')
      throw new SluiceError(
        'SIGNATURE_INVALID',
        'a lock key must be asymmetric, not a shared secret',
      )
    key =
      use === 'sign'
        ? createPrivateKey({ key: jwk as never, format: 'jwk' })
        : createPublicKey({ key: jwk as never, format: 'jwk' })
    if (typeof jwk.alg === 'string') return { key, alg: jwk.alg }
  }
  return { key, alg: algOf(key) }
}

/**
 * Reads a lock key file: a JWK (JSON) or a PEM (PKCS#8 private, SPKI public). For `verify`, a
 * private key file yields its public half.
 *
 * @throws SluiceError `SIGNATURE_INVALID` naming the file when it cannot be read or used.
 */
export async function readLockKey(file: string, use: 'sign' | 'verify'): Promise<LockKey> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    const reason =
      (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'cannot read file'
    throw new SluiceError('SIGNATURE_INVALID', `lock key ${file}: ${reason}`, {
      cause,
      details: { file },
    })
  }
  try {
    const trimmed = text.trim()
    if (trimmed.startsWith('{')) return toLockKey(JSON.parse(trimmed) as JWK, use)
    const key = use === 'sign' ? createPrivateKey(trimmed) : createPublicKey(trimmed)
    return { key, alg: algOf(key) }
  } catch (cause) {
    if (cause instanceof SluiceError)
      throw new SluiceError(cause.code, `lock key ${file}: ${cause.message}`, {
        cause,
        details: { file },
      })
    throw new SluiceError(
      'SIGNATURE_INVALID',
      `lock key ${file}: not a usable ${use === 'sign' ? 'private' : 'public'} key (JWK or PEM)`,
      {
        cause,
        details: { file },
      },
    )
  }
}

/** Signs a lock: returns the detached compact JWS for its `signature` member. */
export async function signLock(
  lock: LockFile,
  signingKey: KeyObject | JWK | LockKey,
): Promise<string> {
  const { key, alg } = toLockKey(signingKey, 'sign')
  const publicJwk = await exportJWK(createPublicKey(key))
  const kid = await calculateJwkThumbprint(publicJwk)
  const jws = await new CompactSign(lockSigningInput(lock))
    .setProtectedHeader({ alg, typ: LOCK_JWS_TYPE, kid })
    .sign(key)
  const [header, , signature] = jws.split('.')
  return `${header}..${signature}`
}

/**
 * Verifies a lock's detached signature with a public key.
 *
 * @throws SluiceError `SIGNATURE_INVALID` when the signature is missing, malformed, made with
 *   another algorithm or key, or the lock was changed after signing.
 */
export async function verifyLock(
  lock: LockFile,
  publicKey: KeyObject | JWK | LockKey,
  file = '<lock>',
): Promise<void> {
  if (lock.signature === undefined) {
    throw new SluiceError(
      'SIGNATURE_INVALID',
      `lock file ${file} is not signed, but a public key is configured`,
      { details: { file } },
    )
  }
  const { key, alg } = toLockKey(publicKey, 'verify')
  const [header, signature] = lock.signature.split('..')
  const compact = `${header}.${base64url.encode(lockSigningInput(lock))}.${signature}`
  try {
    const { protectedHeader } = await compactVerify(compact, key, { algorithms: [alg] })
    if (protectedHeader.typ !== LOCK_JWS_TYPE) throw new Error(`typ ${String(protectedHeader.typ)}`)
  } catch (cause) {
    throw new SluiceError(
      'SIGNATURE_INVALID',
      `lock file ${file}: the signature does not verify with the configured public key`,
      {
        cause,
        details: { file },
      },
    )
  }
}

/** Validates parsed lock data: schema, tool keys, and every hash against its definition. */
export function parseLock(data: unknown, file = '<lock>'): LockFile {
  const parsed = lockSchema.safeParse(data)
  if (!parsed.success) {
    throw lockError(
      file,
      parsed.error.issues.map((issue) => {
        const where = formatPath(issue.path)
        if (issue.code === 'unrecognized_keys')
          return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        return `${where}: ${issue.message.replace(/^Invalid input: /, '')}`
      }),
      parsed.error,
    )
  }
  const lock = parsed.data as LockFile
  const problems: string[] = []
  for (const [server, entry] of Object.entries(lock.servers)) {
    for (const [name, tool] of Object.entries(entry.tools)) {
      const where = `servers.${server}.tools.${name}`
      if (tool.definition.name !== name)
        problems.push(
          `${where}.definition.name: expected "${name}" (the key), got "${tool.definition.name}"`,
        )
      let hash: string
      try {
        hash = hashDefinition(tool.definition)
      } catch (cause) {
        problems.push(`${where}.definition: ${(cause as Error).message}`)
        continue
      }
      if (hash !== tool.hash)
        problems.push(`${where}.hash: does not match the definition (was the lock edited by hand?)`)
    }
  }
  if (problems.length > 0) throw lockError(file, problems)
  return lock
}

/**
 * Reads, validates and (with a public key) verifies a lock file.
 *
 * @throws SluiceError `LOCK_INVALID` naming the file and the path of each problem;
 *   `SIGNATURE_INVALID` when a public key is configured and the signature is missing or bad.
 */
export async function readLock(file: string, options: ReadLockOptions = {}): Promise<LockFile> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    const reason =
      (cause as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'file not found (create it with `sluice lock`)'
        : 'cannot read file'
    throw lockError(file, [reason], cause)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (cause) {
    throw lockError(
      file,
      [`(parse): not valid JSON: ${(cause as Error).message.split('\n')[0]}`],
      cause,
    )
  }
  const lock = parseLock(data, file)
  const publicKey =
    options.publicKey ??
    (options.publicKeyFile === undefined
      ? undefined
      : await readLockKey(options.publicKeyFile, 'verify'))
  if (publicKey !== undefined) await verifyLock(lock, publicKey, file)
  return lock
}

function sortedCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedCopy)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort())
      out[key] = sortedCopy((value as Record<string, unknown>)[key])
    return out
  }
  return value
}

/**
 * Writes a lock atomically (temp file + rename), keys sorted and indented for reviewable diffs.
 * With a signing key, any old signature is replaced by a new one.
 *
 * @throws SluiceError `LOCK_INVALID` when `lock` is not a valid lock.
 */
export async function writeLock(
  file: string,
  lock: LockFile,
  options: WriteLockOptions = {},
): Promise<LockFile> {
  const { signature: _old, ...unsigned } = lock
  parseLock(unsigned, file)
  const signingKey =
    options.signingKey ??
    (options.signingKeyFile === undefined
      ? undefined
      : await readLockKey(options.signingKeyFile, 'sign'))
  const out: LockFile =
    signingKey === undefined
      ? unsigned
      : { ...unsigned, signature: await signLock(unsigned, signingKey) }
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`)
  try {
    await writeFile(temp, `${JSON.stringify(sortedCopy(out), null, 2)}\n`, { mode: 0o644 })
    await rename(temp, file)
  } catch (cause) {
    await unlink(temp).catch(() => undefined)
    throw cause
  }
  return out
}
