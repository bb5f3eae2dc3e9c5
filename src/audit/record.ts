/**
 * The shape of one audit record, the checks at the door of `append`, and the record hash.
 *
 * The door is strict on purpose: an event has a closed set of fields, every free string is capped
 * and every digest must look like one, so neither arguments, results, code nor tokens can be
 * smuggled into the log under another name (DESIGN.md §5.8, AUD-02).
 *
 * @module
 */
import { canonicalJson as jcs } from '../canonical-json.js'
import { LABEL_PATTERN, MAX_LABELS_PER_ENTRY } from '../config/index.js'
import { stripInvisible } from '../text.js'
import { canonicalJson, encodeJsonLine, sha256Tagged, SHA256_TAGGED } from './canonical-json.js'

/** `prev` of the first record of a chain. */
export const GENESIS_HASH = `sha256:${'0'.repeat(64)}`

/** Default cap of every free string in a record, in UTF-16 code units. */
export const DEFAULT_MAX_FIELD_CHARS = 512

/** Cap of the `tools` list of one record (e.g. a quarantine of a whole server). */
export const MAX_TOOLS_PER_RECORD = 256

/** Cap of the `labels` list of one record: a tool's own labels plus its server's. */
export const MAX_LABELS_PER_RECORD = 2 * MAX_LABELS_PER_ENTRY

/** Event types a caller may append. */
export const AUDIT_EVENT_TYPES = [
  'gateway.start',
  'gateway.stop',
  'execution.start',
  'execution.end',
  'call.decision',
  'call.approval',
  'call.result',
  'tools.quarantined',
  'tools.restored',
] as const

/** Types only the log itself writes. */
export const AUDIT_SYSTEM_TYPES = ['checkpoint', 'rotation', 'recovery'] as const

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number]
export type AuditSystemType = (typeof AUDIT_SYSTEM_TYPES)[number]
export type AuditRecordType = AuditEventType | AuditSystemType

/** Who acted, as the audit log keeps it (identity, never credentials). */
export interface AuditPrincipal {
  sub: string
  iss: string
  tenant?: string
  /** The actor a delegated token names (`act.sub`), when there is one. */
  act?: string
}

/**
 * What a caller records. Only digests of arguments, code and results: there is deliberately no
 * field that could carry their content.
 */
export interface AuditEvent {
  type: AuditEventType
  executionId?: string
  /** W3C trace id (32 lower-case hex) joining the record to its spans. */
  traceId?: string
  principal?: AuditPrincipal
  /** `server.tool` with the upstream's own tool spelling. */
  tool?: string
  /** Definition hash of the tool (`sha256:<hex>`). */
  toolHash?: string
  /** `allow`, `deny`, `approve`, `approved`, … as the engine names it. */
  decision?: string
  ruleId?: string
  policyVersion?: string
  /** `hashArgs(args)`. */
  argsHash?: string
  /** `hashArgs(code)` of an execution. */
  codeHash?: string
  /** `hashArgs(result)` of a call, when the engine keeps one. */
  resultHash?: string
  /** `ok`, `error`, an approval answer, … */
  status?: string
  /** A sluice error code. */
  code?: string
  /** Duration in milliseconds. */
  ms?: number
  callCount?: number
  /** A short, secret-free reason (e.g. why a tool was quarantined). */
  reason?: string
  /** Several tools at once (`server.tool`), e.g. a quarantine. */
  tools?: string[]
  /** PII values found (or tokens resolved), per kind: counts, never a value. */
  pii?: Record<string, number>
  /**
   * `call.decision`: the data labels of the tool (its own and its server's, from the config).
   * Label names only, in the config's alphabet: never a value.
   */
  labels?: string[]
}

/** The torn bytes a `recovery` record accounts for. */
export interface TornBytes {
  /** 1-based line of the file where the torn bytes start. */
  line: number
  /** Byte count, including the newline that closed them. */
  bytes: number
  sha256: string
}

/** One record as written: the event plus sequence, time and chain fields. */
export interface AuditRecord extends Omit<AuditEvent, 'type'> {
  readonly seq: number
  /** ISO 8601 UTC. */
  readonly time: string
  readonly type: AuditRecordType
  /** `checkpoint`: compact JWS (ES256) over `{"seq":<seq-1>,"hash":<prev>}`. */
  readonly sig?: string
  /** `rotation`: the file name the previous records were moved to. */
  readonly from?: string
  /** `recovery`: the torn bytes between the last complete record and this one. */
  readonly torn?: TornBytes
  /** Hash of the record before (or of the previous file's last, or `GENESIS_HASH`). */
  readonly prev: string
  /** `sha256:` of the canonical JSON of this record without `hash`. */
  readonly hash: string
}

const STRING_FIELDS = [
  'executionId',
  'tool',
  'decision',
  'ruleId',
  'policyVersion',
  'status',
  'code',
  'reason',
] as const
const DIGEST_FIELDS = ['toolHash', 'argsHash', 'codeHash', 'resultHash'] as const
const EVENT_KEYS: ReadonlySet<string> = new Set([
  'type',
  'traceId',
  'principal',
  'ms',
  'callCount',
  'tools',
  'pii',
  'labels',
  ...STRING_FIELDS,
  ...DIGEST_FIELDS,
])
const PRINCIPAL_KEYS: ReadonlySet<string> = new Set(['sub', 'iss', 'tenant', 'act'])
const EVENT_TYPES: ReadonlySet<string> = new Set(AUDIT_EVENT_TYPES)

/** Order of keys on the line: the reading order for a human; the hash does not depend on it. */
const KEY_ORDER = [
  'seq',
  'time',
  'type',
  'executionId',
  'traceId',
  'principal',
  'tool',
  'toolHash',
  'decision',
  'ruleId',
  'policyVersion',
  'argsHash',
  'codeHash',
  'resultHash',
  'status',
  'code',
  'ms',
  'callCount',
  'reason',
  'tools',
  'pii',
  'labels',
  'from',
  'torn',
  'sig',
  'prev',
  'hash',
] as const

/** Caps `value` at `maxChars`, saying how much was cut so a reader knows it is not the whole. */
/**
 * A free string as a record keeps it: invisible and control characters removed and lone
 * surrogates replaced (src/text.ts), so every record is well-formed for RFC 8785, then capped.
 */
export function capString(value: string, maxChars: number): string {
  const clean = stripInvisible(value)
  return clean.length <= maxChars
    ? clean
    : `${clean.slice(0, maxChars)}…[+${clean.length - maxChars} chars]`
}

/**
 * Checks and normalises an event at the door of `append`.
 *
 * @throws TypeError for misuse: an unknown type or field, a reserved type, a malformed digest.
 */
export function normaliseEvent(
  event: AuditEvent,
  maxFieldChars: number,
): Omit<AuditRecord, 'seq' | 'time' | 'prev' | 'hash'> {
  if (typeof event !== 'object' || event === null)
    throw new TypeError('audit event must be an object')
  for (const key of Object.keys(event)) {
    if (!EVENT_KEYS.has(key))
      throw new TypeError(
        `audit event has an unknown field "${key}" (content never goes into the audit log; hash it)`,
      )
  }
  if (!EVENT_TYPES.has(event.type))
    throw new TypeError(`audit event type "${String(event.type)}" is not one a caller may append`)
  const out: Record<string, unknown> = { type: event.type }
  for (const key of STRING_FIELDS) {
    const value = event[key]
    if (value === undefined) continue
    if (typeof value !== 'string')
      throw new TypeError(`audit event field "${key}" must be a string`)
    out[key] = capString(value, maxFieldChars)
  }
  for (const key of DIGEST_FIELDS) {
    const value = event[key]
    if (value === undefined) continue
    if (typeof value !== 'string' || !SHA256_TAGGED.test(value)) {
      throw new TypeError(`audit event field "${key}" must be "sha256:<64 hex>" (use hashArgs)`)
    }
    out[key] = value
  }
  if (event.traceId !== undefined) {
    if (typeof event.traceId !== 'string' || !/^[0-9a-f]{32}$/.test(event.traceId)) {
      throw new TypeError('audit event field "traceId" must be 32 lower-case hex digits')
    }
    out.traceId = event.traceId
  }
  if (event.principal !== undefined)
    out.principal = normalisePrincipal(event.principal, maxFieldChars)
  for (const key of ['ms', 'callCount'] as const) {
    const value = event[key]
    if (value === undefined) continue
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < 0 ||
      (key === 'callCount' && !Number.isInteger(value))
    ) {
      throw new TypeError(
        `audit event field "${key}" must be a finite number ≥ 0${key === 'callCount' ? ' (integer)' : ''}`,
      )
    }
    out[key] = value
  }
  if (event.tools !== undefined) {
    if (!Array.isArray(event.tools) || event.tools.some((t) => typeof t !== 'string')) {
      throw new TypeError('audit event field "tools" must be a list of strings')
    }
    const kept = event.tools.slice(0, MAX_TOOLS_PER_RECORD).map((t) => capString(t, maxFieldChars))
    if (event.tools.length > MAX_TOOLS_PER_RECORD)
      kept.push(`…[+${event.tools.length - MAX_TOOLS_PER_RECORD} more]`)
    out.tools = kept
  }
  if (event.pii !== undefined) out.pii = normaliseCounts(event.pii)
  if (event.labels !== undefined) {
    // Refused rather than capped: a label outside the alphabet is not a label but smuggled text.
    if (
      !Array.isArray(event.labels) ||
      event.labels.length > MAX_LABELS_PER_RECORD ||
      event.labels.some((l) => typeof l !== 'string' || !LABEL_PATTERN.test(l))
    ) {
      throw new TypeError(
        `audit event field "labels" must be at most ${MAX_LABELS_PER_RECORD} labels matching ${LABEL_PATTERN.source}`,
      )
    }
    out.labels = [...event.labels]
  }
  return out as unknown as Omit<AuditRecord, 'seq' | 'time' | 'prev' | 'hash'>
}

/** Kind names as the PII guard spells them; a count is what an auditor may see of a value. */
const COUNT_KEY = /^[a-z][a-z0-9_]{0,31}$/

function normaliseCounts(counts: Record<string, number>): Record<string, number> {
  if (typeof counts !== 'object' || counts === null || Array.isArray(counts))
    throw new TypeError('audit event field "pii" must be an object of counts')
  const out: Record<string, number> = {}
  for (const [key, n] of Object.entries(counts)) {
    if (!COUNT_KEY.test(key) || !Number.isSafeInteger(n) || n < 0)
      throw new TypeError('audit event field "pii" must map kind names to integers ≥ 0')
    out[key] = n
  }
  return out
}

function normalisePrincipal(principal: AuditPrincipal, maxFieldChars: number): AuditPrincipal {
  if (typeof principal !== 'object' || principal === null)
    throw new TypeError('audit event field "principal" must be an object')
  for (const key of Object.keys(principal)) {
    if (!PRINCIPAL_KEYS.has(key))
      throw new TypeError(
        `audit principal has an unknown field "${key}" (only sub, iss, tenant, act)`,
      )
  }
  const out: Record<string, string> = {}
  for (const key of ['sub', 'iss', 'tenant', 'act'] as const) {
    const value = principal[key]
    if (value === undefined) {
      if (key === 'sub' || key === 'iss') throw new TypeError(`audit principal needs "${key}"`)
      continue
    }
    if (typeof value !== 'string')
      throw new TypeError(`audit principal field "${key}" must be a string`)
    out[key] = capString(value, maxFieldChars)
  }
  return out as unknown as AuditPrincipal
}

/** The record hash: `sha256:` over the canonical JSON of every field but `hash`. */
export function hashRecord(record: Readonly<Record<string, unknown>>): string {
  return sha256Tagged(recordJcs(record))
}

/** The record keys in RFC 8785 order (UTF-16 code units; all ASCII), without `hash`. */
const SORTED_KEYS = KEY_ORDER.filter((key) => key !== 'hash').sort()

/**
 * The canonical JSON of a record without its `hash`: the keys a record may have are known and
 * plain ASCII, so they are walked in their sorted order instead of sorted per record (a record
 * is sealed twice per inner call). A record with a key outside them takes the general path.
 */
function recordJcs(record: Readonly<Record<string, unknown>>): string {
  let out = '{'
  let seen = 0
  for (const key of SORTED_KEYS) {
    const value = record[key]
    if (value === undefined) continue
    out += `${seen === 0 ? '' : ','}"${key}":${typeof value === 'string' ? JSON.stringify(value) : jcs(value)}`
    seen++
  }
  let present = 0
  for (const key in record) if (key !== 'hash' && record[key] !== undefined) present++
  if (present === seen) return `${out}}`
  const { hash: _ignored, ...rest } = record
  return jcs(rest)
}

/**
 * The hash records written before RFC 8785 hashing carry: the same canonical form with the
 * audit's line-break escapes applied before hashing. It differs from {@link hashRecord} only for
 * a record holding DEL, a C1 control or U+2028/U+2029; verify accepts either, since each is a
 * function of the record's value alone.
 */
export function legacyHashRecord(record: Readonly<Record<string, unknown>>): string {
  const { hash: _ignored, ...rest } = record
  return sha256Tagged(canonicalJson(rest))
}

/** Puts the fields in reading order (unknown keys last, in their own order). */
export function orderRecord(record: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of KEY_ORDER) if (record[key] !== undefined) out[key] = record[key]
  for (const key of Object.keys(record))
    if (!(key in out) && record[key] !== undefined) out[key] = record[key]
  return out
}

/**
 * The UTF-8 length of the line {@link sealRecord} would write for `fields`, without hashing:
 * every hash has the same length, so a placeholder sizes the line exactly.
 */
export function recordLineBytes(fields: Readonly<Record<string, unknown>>): number {
  return Buffer.byteLength(encodeJsonLine(orderRecord({ ...fields, hash: GENESIS_HASH })))
}

/** Seals a record: orders its fields, adds `hash`, and returns it with its line (no newline). */
export function sealRecord(fields: Readonly<Record<string, unknown>>): {
  record: AuditRecord
  line: string
} {
  const ordered = orderRecord(fields)
  ordered.hash = hashRecord(ordered)
  const record = deepFreeze(ordered) as unknown as AuditRecord
  return { record, line: encodeJsonLine(ordered) }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
