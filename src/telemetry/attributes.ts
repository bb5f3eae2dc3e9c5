/**
 * The span attribute allowlist: the only keys sluice puts on spans, following the OTel GenAI and
 * MCP semantic conventions plus `sluice.*`. Anything else is dropped, so code, arguments, results,
 * tokens and headers cannot reach an exporter by accident (CRD-06, T18). Content keys
 * (`gen_ai.tool.call.arguments`/`result`, `sluice.code`) are opt-in, as the GenAI conventions mark
 * them sensitive; they pass only with `captureContent`.
 *
 * Identity: `enduser.id` (the principal's `sub`) is identity, not a secret, but often personal
 * data (an e-mail); by default it is exported as `sha256:<hex>` of the value, which still joins
 * spans of one user (and the audit log, which keeps `sub` in clear, for whoever holds both).
 * `enduserId: 'plain'` exports it as is; `'omit'` drops it. `mcp.session.id` is always hashed: a
 * Streamable HTTP session id is a bearer-like handle.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { Attributes, Span } from '@opentelemetry/api'

type AttributeKind = 'string' | 'int' | 'content'

interface AttributeSpec {
  readonly kind: AttributeKind
  /** `hash`: exported as `sha256:<hex>`; `identity`: per `enduserId`. */
  readonly treatment?: 'hash' | 'identity'
}

/** Every attribute key sluice may export, with its value kind. */
export const ALLOWED_ATTRIBUTES = {
  // MCP semantic conventions
  'mcp.method.name': { kind: 'string' },
  'mcp.session.id': { kind: 'string', treatment: 'hash' },
  'mcp.protocol.version': { kind: 'string' },
  'jsonrpc.request.id': { kind: 'string' },
  // GenAI semantic conventions (execute_tool spans)
  'gen_ai.operation.name': { kind: 'string' },
  'gen_ai.tool.name': { kind: 'string' },
  'gen_ai.tool.call.id': { kind: 'string' },
  'gen_ai.tool.type': { kind: 'string' },
  'gen_ai.tool.call.arguments': { kind: 'content' },
  'gen_ai.tool.call.result': { kind: 'content' },
  // sluice
  'sluice.server': { kind: 'string' },
  'sluice.tool.hash': { kind: 'string' },
  'sluice.policy.decision': { kind: 'string' },
  'sluice.policy.rule_id': { kind: 'string' },
  'sluice.execution.id': { kind: 'string' },
  'sluice.code': { kind: 'content' },
  'sluice.code.sha256': { kind: 'string' },
  'sluice.code.bytes': { kind: 'int' },
  'sluice.args.sha256': { kind: 'string' },
  'sluice.args.bytes': { kind: 'int' },
  'sluice.result.bytes': { kind: 'int' },
  'sluice.call.count': { kind: 'int' },
  // general
  'error.type': { kind: 'string' },
  'enduser.id': { kind: 'string', treatment: 'identity' },
  'server.address': { kind: 'string' },
  'server.port': { kind: 'int' },
} as const satisfies Record<string, AttributeSpec>

export type AllowedAttribute = keyof typeof ALLOWED_ATTRIBUTES

type ValueOf<K extends AttributeKind> = K extends 'string'
  ? string
  : K extends 'int'
    ? number
    : unknown

/** Attributes a caller may pass; keys are checked at compile time and again at run time. */
export type SafeAttributes = {
  [K in AllowedAttribute]?: ValueOf<(typeof ALLOWED_ATTRIBUTES)[K]['kind']>
}

/** Cap of a non-content string attribute (names, ids, hashes), in UTF-16 code units. */
export const MAX_ATTRIBUTE_CHARS = 256
/** Default cap of a content attribute when `captureContent` is on. */
export const DEFAULT_MAX_CONTENT_CHARS = 4096

export interface AttributePolicy {
  /** Export code, arguments and results (content keys). Default false. */
  readonly captureContent: boolean
  /** How `enduser.id` is exported. Default `hash`. */
  readonly enduserId: 'hash' | 'plain' | 'omit'
  /** Cap of one content attribute. Default 4096. */
  readonly maxContentChars: number
}

const DEFAULT_POLICY: AttributePolicy = Object.freeze({
  captureContent: false,
  enduserId: 'hash',
  maxContentChars: DEFAULT_MAX_CONTENT_CHARS,
})

let policy: AttributePolicy = DEFAULT_POLICY

/**
 * Sets the process-wide attribute policy (call once at start, from `telemetry.captureContent`
 * in the config). Keys not given take their defaults, so `configureAttributes({})` resets.
 */
export function configureAttributes(options: Partial<AttributePolicy>): void {
  const next = { ...DEFAULT_POLICY, ...options }
  if (!['hash', 'plain', 'omit'].includes(next.enduserId))
    throw new TypeError('enduserId must be hash, plain or omit')
  if (!Number.isSafeInteger(next.maxContentChars) || next.maxContentChars < 1)
    throw new TypeError('maxContentChars must be a positive integer')
  policy = Object.freeze(next)
}

/** The attribute policy in force. */
export function attributePolicy(): AttributePolicy {
  return policy
}

const SPECS: Readonly<Record<string, AttributeSpec>> = ALLOWED_ATTRIBUTES

function cap(value: string, maxChars: number): string {
  return value.length <= maxChars ? value : `${value.slice(0, maxChars)}…`
}

function hashed(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex')}`
}

/**
 * The allowed subset of `attributes` as OTel attributes: unknown keys and values of the wrong
 * kind are dropped, content keys unless `captureContent`, strings are capped, hashed keys hashed.
 */
export function filterAttributes(
  attributes: SafeAttributes,
  current: AttributePolicy = policy,
): Attributes {
  const out: Attributes = {}
  for (const [key, value] of Object.entries(attributes)) {
    if (!Object.hasOwn(SPECS, key) || value === undefined) continue
    const spec = SPECS[key]!
    switch (spec.kind) {
      case 'int':
        if (typeof value === 'number' && Number.isSafeInteger(value)) out[key] = value
        break
      case 'content':
        if (current.captureContent) {
          let text: string | undefined
          try {
            text = typeof value === 'string' ? value : JSON.stringify(value)
          } catch {
            text = undefined
          }
          if (text !== undefined) out[key] = cap(text, current.maxContentChars)
        }
        break
      case 'string': {
        if (typeof value !== 'string') break
        if (spec.treatment === 'hash') out[key] = hashed(value)
        else if (spec.treatment === 'identity') {
          if (current.enduserId === 'hash') out[key] = hashed(value)
          else if (current.enduserId === 'plain') out[key] = cap(value, MAX_ATTRIBUTE_CHARS)
        } else out[key] = cap(value, MAX_ATTRIBUTE_CHARS)
        break
      }
    }
  }
  return out
}

/** Sets the allowed subset of `attributes` on `span` (nothing at all on a non-recording span). */
export function setSafeAttributes(span: Span, attributes: SafeAttributes): void {
  if (!span.isRecording()) return
  span.setAttributes(filterAttributes(attributes))
}
