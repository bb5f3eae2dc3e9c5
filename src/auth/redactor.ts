/**
 * The redactor: a set of secret values the host has seen (granted credentials, exchanged tokens,
 * client secrets, inbound tokens) and a scrubber that replaces them, and their common encodings,
 * in any text or JSON about to leave through a result, a log line, an error, a span or an audit
 * record.
 *
 * @module
 */
import { Buffer } from 'node:buffer'

/** What a secret becomes in redacted text. */
export const REDACTED = '[REDACTED]'

/** Secrets shorter than this are not registered: redacting `abc` everywhere would ruin output. */
export const MIN_SECRET_LENGTH = 8

/** Secrets remembered at most; the oldest is forgotten first, so a long-lived gateway stays bounded. */
export const DEFAULT_MAX_SECRETS = 10_000

export interface Redactor {
  /** Registers a secret (and its base64, base64url, URL- and JSON-encoded forms). */
  add(secret: string): void
  /** Replaces every registered secret (in any registered form) with `[REDACTED]`. */
  redact(text: string): string
  /** A deep copy of `value` with every string (and key) redacted. */
  redactJson<T>(value: T): T
  /** True when `text` contains any registered secret form. */
  contains(text: string): boolean
  /** The registered secrets themselves (not their encodings), oldest first. */
  values(): readonly string[]
  readonly size: number
}

export interface RedactorOptions {
  /** Secrets remembered at most; default {@link DEFAULT_MAX_SECRETS}. */
  maxSecrets?: number
}

function encodings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8')
  const forms = new Set<string>([
    secret,
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
  ])
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH)
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Creates an empty redactor. */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const maxSecrets = options.maxSecrets ?? DEFAULT_MAX_SECRETS
  if (!Number.isInteger(maxSecrets) || maxSecrets < 1)
    throw new TypeError('maxSecrets must be a positive integer')
  // Insertion order doubles as age for eviction.
  const secrets = new Map<string, string[]>()
  let pattern: RegExp | undefined

  function compiled(): RegExp | undefined {
    if (secrets.size === 0) return undefined
    if (pattern === undefined) {
      const forms = [...new Set([...secrets.values()].flat())].sort((a, b) => b.length - a.length)
      pattern = new RegExp(forms.map(escapeRegExp).join('|'), 'g')
    }
    return pattern
  }

  function redact(text: string): string {
    const re = compiled()
    return re === undefined ? text : text.replace(re, REDACTED)
  }

  function redactValue(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return redact(value)
    if (value === null || typeof value !== 'object' || depth > 256) return value
    if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[redact(k)] = redactValue(v, depth + 1)
    return out
  }

  return {
    add(secret: string): void {
      if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) return
      if (secrets.has(secret)) {
        secrets.delete(secret) // refresh its age
      } else {
        pattern = undefined
      }
      secrets.set(secret, encodings(secret))
      while (secrets.size > maxSecrets) {
        const oldest = secrets.keys().next().value
        if (oldest === undefined) break
        secrets.delete(oldest)
        pattern = undefined
      }
    },
    redact,
    redactJson<T>(value: T): T {
      return redactValue(value, 0) as T
    },
    contains(text: string): boolean {
      const re = compiled()
      if (re === undefined) return false
      re.lastIndex = 0
      const found = re.test(text)
      re.lastIndex = 0
      return found
    },
    values(): readonly string[] {
      return [...secrets.keys()]
    },
    get size(): number {
      return secrets.size
    },
  }
}
