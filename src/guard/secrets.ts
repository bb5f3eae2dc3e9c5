/**
 * API keys, JSON Web Tokens and PEM private keys.
 *
 * api_key is two rules:
 * 1. a known provider prefix with that provider's body (see {@link PREFIXED});
 * 2. a high-entropy token: a run of base64/base62 characters, not hex (hashes, UUIDs and git
 *    commits are hex and are no secret), with upper case, lower case and digits, and Shannon
 *    entropy of at least {@link STANDALONE_MIN_BITS} bits per character over at least
 *    {@link STANDALONE_MIN_LENGTH} characters; or, right after a word such as `secret`,
 *    `token`, `password`, `api_key` on the same line, letters and digits, entropy of at least
 *    {@link CONTEXT_MIN_BITS}, over at least {@link CONTEXT_MIN_LENGTH} characters. Tokens
 *    longer than {@link MAX_TOKEN_LENGTH} are data (an image, a file), and standalone
 *    base64 that decodes to printable text (a pagination cursor) is encoded text, not a key.
 *
 * jwt: three base64url segments (or five, JWE) whose first decodes to a JSON object with a
 * string `alg`. private_key: a PEM `-----BEGIN … PRIVATE KEY-----` block to its `-----END …
 * PRIVATE KEY-----` line, or, when the end was cut off, to the end of the base64 body.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import type { Detection } from './kinds.js'
import { shannonEntropy } from './validators.js'

/** Provider key shapes (gitleaks and secretlint rules, providers' own documentation). */
const PREFIXED = new RegExp(
  '(?<![\\w-])(?:' +
    [
      'sk-ant-(?:api|admin)\\d\\d-[\\w-]{20,}', // Anthropic
      'sk-(?:proj-|svcacct-|admin-)?[\\w-]{20,}', // OpenAI
      'gh[pousr]_[A-Za-z0-9]{36,}', // GitHub classic and app tokens
      'github_pat_\\w{22,}', // GitHub fine-grained
      'xox[abpr]-[A-Za-z0-9-]{10,}', // Slack
      '(?:AKIA|ASIA)[A-Z0-9]{16}', // AWS access key id
      'AIza[\\w-]{35}', // Google API key
      '(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}', // Stripe
      'glpat-[\\w-]{20,}', // GitLab
      'npm_[A-Za-z0-9]{36}', // npm
      'hf_[A-Za-z0-9]{30,}', // Hugging Face
      'SG\\.[\\w-]{22}\\.[\\w-]{43}', // SendGrid
      'SK[0-9a-fA-F]{32}', // Twilio API key
    ].join('|') +
    ')(?![\\w-])',
  'g',
)

const PREFIX_BODY =
  /^(?:sk-ant-|sk-proj-|sk-svcacct-|sk-admin-|sk-|[a-z]+_(?:live_|test_|pat_)?|xox[abpr]-|glpat-|SG\.)/

/** Standalone high-entropy tokens: at least this long (padding not counted)… */
export const STANDALONE_MIN_LENGTH = 32
/** …and at least this many bits per character. */
export const STANDALONE_MIN_BITS = 4.5
/** After a word like `secret` or `token`: at least this long… */
export const CONTEXT_MIN_LENGTH = 16
/** …and at least this many bits per character. */
export const CONTEXT_MIN_BITS = 3.5
/** Longer runs are data (an image, a file), not a key. */
export const MAX_TOKEN_LENGTH = 256

const TOKEN = /(?<![\w+/=-])[\w+/-]{16,}={0,2}(?![\w+/=-])/g
const HEX_OR_UUID = /^[0-9a-fA-F-]+$/
/** A secret's name just before its value: `"api_key": "`, `password=`, `Authorization: Bearer `. */
const CONTEXT_WORD =
  /(?:api[_-]?key|apikey|secret|passw(?:or)?d|pwd|token|auth|bearer|credential|access[_-]?key|private[_-]?key)\w*["']?\s*[:=]?\s*["']?(?:bearer\s+|basic\s+)?$/i
/** Names that sound secret but hold an opaque position in a listing. */
const NOT_SECRET_WORD =
  /(?:page|next|continuation|sync|cursor|resume)[_-]?token\w*["']?\s*[:=]?\s*["']?$/i
const CONTEXT_WINDOW = 48

export function findApiKeys(text: string, out: Detection[]): void {
  PREFIXED.lastIndex = 0
  for (let m = PREFIXED.exec(text); m !== null; m = PREFIXED.exec(text)) {
    // Prefixes that are also English (`sk-`, `hf_`) need a body with letters and digits.
    const body = m[0].replace(PREFIX_BODY, '')
    if (/[0-9]/.test(body) && /[A-Za-z]/.test(body))
      out.push({ kind: 'api_key', start: m.index, end: m.index + m[0].length })
  }
  TOKEN.lastIndex = 0
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    if (isHighEntropyToken(text, m.index, m[0]))
      out.push({ kind: 'api_key', start: m.index, end: m.index + m[0].length })
  }
}

function isHighEntropyToken(text: string, start: number, token: string): boolean {
  const body = token.replace(/=+$/, '')
  if (body.length > MAX_TOKEN_LENGTH || HEX_OR_UUID.test(body)) return false
  const hasDigit = /[0-9]/.test(body)
  const hasLower = /[a-z]/.test(body)
  const hasUpper = /[A-Z]/.test(body)
  if (!hasDigit || !(hasLower || hasUpper)) return false
  const bits = shannonEntropy(body)
  if (
    body.length >= STANDALONE_MIN_LENGTH &&
    hasLower &&
    hasUpper &&
    bits >= STANDALONE_MIN_BITS &&
    !decodesToText(body)
  )
    return true
  if (body.length < CONTEXT_MIN_LENGTH || bits < CONTEXT_MIN_BITS) return false
  const line = text.lastIndexOf('\n', start - 1) + 1
  const before = text.slice(Math.max(line, start - CONTEXT_WINDOW), start)
  return CONTEXT_WORD.test(before) && !NOT_SECRET_WORD.test(before)
}

/** Whether base64 `body` decodes to bytes that are nearly all printable ASCII. */
function decodesToText(body: string): boolean {
  if (body.length % 4 === 1) return false
  const bytes = Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64')
  let printable = 0
  for (const b of bytes) if ((b >= 32 && b < 127) || b === 9 || b === 10 || b === 13) printable++
  return printable >= bytes.length * 0.9
}

const JWT = /(?<![\w-])eyJ[\w-]{4,}\.[\w-]+\.[\w-]*(?:\.[\w-]*\.[\w-]+)?(?![\w-])/g

export function findJwts(text: string, out: Detection[]): void {
  if (!text.includes('eyJ')) return
  JWT.lastIndex = 0
  for (let m = JWT.exec(text); m !== null; m = JWT.exec(text)) {
    const header = m[0].slice(0, m[0].indexOf('.'))
    if (headerHasAlg(header)) out.push({ kind: 'jwt', start: m.index, end: m.index + m[0].length })
  }
}

function headerHasAlg(segment: string): boolean {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      typeof (value as Record<string, unknown>)['alg'] === 'string'
    )
  } catch {
    return false
  }
}

const PEM_BEGIN = /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----/g
const PEM_END = /-----END (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----/y

export function findPrivateKeys(text: string, out: Detection[]): void {
  if (!text.includes('-----BEGIN ')) return
  // Where the next END and the next BEGIN are, found once and reused: with many BEGINs and
  // no END, a search per BEGIN would read the rest of the text each time.
  let nextEnd = -2
  let nextBegin = -2
  PEM_BEGIN.lastIndex = 0
  for (let m = PEM_BEGIN.exec(text); m !== null; m = PEM_BEGIN.exec(text)) {
    const bodyStart = m.index + m[0].length
    if (nextEnd !== -1 && nextEnd < bodyStart) nextEnd = findEnd(text, bodyStart)
    if (nextBegin !== -1 && nextBegin < bodyStart)
      nextBegin = text.indexOf('-----BEGIN ', bodyStart)
    let end: number
    if (nextEnd !== -1 && (nextBegin === -1 || nextEnd < nextBegin)) {
      PEM_END.lastIndex = nextEnd
      PEM_END.exec(text)
      end = PEM_END.lastIndex
    } else {
      end = endOfBody(text, bodyStart)
    }
    out.push({ kind: 'private_key', start: m.index, end })
    PEM_BEGIN.lastIndex = Math.max(PEM_BEGIN.lastIndex, end)
  }
}

/** The next `-----END … PRIVATE KEY-----` at or after `from`, or -1. */
function findEnd(text: string, from: number): number {
  for (let i = text.indexOf('-----END ', from); i !== -1; i = text.indexOf('-----END ', i + 1)) {
    PEM_END.lastIndex = i
    if (PEM_END.test(text)) return i
  }
  return -1
}

/**
 * Where a PEM body cut off before its END line stops: base64 lines, whitespace and the JSON
 * escapes `\n`/`\r` that carry the newlines when the key sits in a JSON string, plus the
 * `Proc-Type:`/`DEK-Info:` headers of legacy encrypted keys. The span ends at the last base64
 * character.
 */
function endOfBody(text: string, from: number): number {
  const BODY = /(?:(?:Proc-Type|DEK-Info):[^\r\n\\]*|[A-Za-z0-9+/=]+|\\[nr]|[ \t\r\n]+)+/y
  BODY.lastIndex = from
  const m = BODY.exec(text)
  if (m === null) return from
  let end = from + m[0].length
  for (;;) {
    const c = text[end - 1]
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') end--
    else if ((c === 'n' || c === 'r') && text[end - 2] === '\\') end -= 2
    else break
  }
  return Math.max(end, from)
}
