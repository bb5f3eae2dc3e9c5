/**
 * API keys, by two rules.
 *
 * 1. A provider's prefix and body shape ({@link PREFIXED}): OpenAI, Anthropic, GitHub, Slack,
 *    AWS, Google, Stripe, GitLab, npm, Hugging Face, SendGrid, Twilio.
 * 2. A high-entropy token: a maximal run of base64/base62 characters (in a path, each
 *    segment) that is
 *    - not hex: SHA-256 digests, UUIDs and git commits are hex and are no secret;
 *    - not words: less than half of it in lower-case or capitalised words of 4+ letters
 *      (`processUtf8EncodedStringBufferV2`, `kubernetes-io-cluster-…`);
 *    - not an alphabet: under a quarter of neighbours in character order, and not 32+
 *      characters that never repeat (`ABC…xyz0123…+/`, nanoid's alphabet);
 *    - not a segment of a dotted whole (`a.<token>.b`: a JWT-like or a host name), not inside
 *      a PEM block (certificate and public-key lines), not an SRI digest (`sha512-…`), not
 *      right after a name that says what it is (`digest`, `etag`, `nonce`, `signature`,
 *      `public_key`, `nextPageToken`, `request_id`, `ssh-ed25519` …);
 *    - at most {@link MAX_TOKEN_LENGTH} characters: longer runs are data (an image, a file);
 *    and then either
 *    - after a secret's name on the same line (`api_key`, `client_secret`, `password=`,
 *      `Authorization: Bearer`, `_authToken` …): {@link CONTEXT_MIN_LENGTH} characters or more,
 *      letters and digits or both cases, entropy at least {@link CONTEXT_MIN_ENTROPY_RATIO} of
 *      the most its length allows; or
 *    - standalone: {@link STANDALONE_MIN_LENGTH} characters or more with upper case, lower
 *      case and digits, entropy at least {@link STANDALONE_MIN_ENTROPY_RATIO} of the most, and
 *      not base64 of printable text (a cursor).
 *
 * "The most its length allows" is log2(min(length, 64)) bits per character: a random base62
 * string of 16–64 characters reaches 0.83–0.84 of it at its 1st percentile (20,000 samples per
 * length), identifiers and paths 0.75–0.84, which is why the word rule is needed beside it.
 * Measured recall on random base62 keys: 94% at 16 characters after a name, 97% at 20; 98%
 * standalone at 32, 99% at 40, 99.8% at 64 (the word rule costs most of the rest).
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import type { Detection } from './kinds.js'
import { pemBlocks } from './pem.js'

/** Provider key shapes, after the gitleaks and secretlint rules and the providers' docs. */
const PREFIXED = new RegExp(
  '(?<![\\w-])(?:' +
    [
      'sk-ant-(?:api|admin)\\d\\d-[\\w-]{20,}', // Anthropic
      'sk-(?:proj-|svcacct-|admin-)?[\\w-]{20,}', // OpenAI
      'gh[pousr]_[A-Za-z0-9]{36,}', // GitHub classic, OAuth, user, server, refresh
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

const PREFIX =
  /^(?:sk-ant-|sk-proj-|sk-svcacct-|sk-admin-|sk-|[a-z]+_(?:live_|test_|pat_)?|xox[abpr]-|glpat-|SG\.)/

/** Standalone tokens: at least this many characters, `=` padding not counted. */
export const STANDALONE_MIN_LENGTH = 32
/** Standalone tokens: Shannon entropy at least this share of log2(min(length, 64)). */
export const STANDALONE_MIN_ENTROPY_RATIO = 0.8
/** After a secret's name: at least this many characters. */
export const CONTEXT_MIN_LENGTH = 16
/** After a secret's name: Shannon entropy at least this share of log2(min(length, 64)). */
export const CONTEXT_MIN_ENTROPY_RATIO = 0.7
/** Longer runs are data (an image, a file), not a key. */
export const MAX_TOKEN_LENGTH = 256
/** How far before a token its name is looked for, on the same line. */
const NAME_WINDOW = 48

const SRI = /^sha(?:1|256|384|512)-/
/** Parts of a secret's name (`client_secret`, `_authToken`, `Authorization`). */
const SECRET_PARTS: ReadonlySet<string> = new Set(
  'secret secrets password passwords passwd pwd passphrase token tokens bearer credential credentials apikey auth authorization authtoken authkey'.split(
    ' ',
  ),
)
/** Pairs of adjacent parts that name a secret (`x-api-key`, `AWS_ACCESS_KEY`). */
const SECRET_PAIRS = /(?:^|_)(?:api|access|private|secret|signing|client)_keys?(?:_|$)/
/** Parts that say what a value is, when that is no secret (`fileHash`, `etag`, `nonce`). */
const NOT_SECRET_PARTS: ReadonlySet<string> = new Set(
  'hash digest checksum integrity etag fingerprint sha sha1 sha256 sha384 sha512 md5 crc crc32 signature sig nonce salt cursor public pubkey publickey'.split(
    ' ',
  ),
)
/** Pairs that name an opaque position or an id (`nextPageToken`, `request_id`). */
const NOT_SECRET_PAIRS =
  /(?:^|_)(?:(?:page|next|continuation|sync|resume)_token|(?:request|trace|span|correlation|message|commit|build|run|object)_id)(?:_|$)/
/** Key types before a public key's base64: `ssh-ed25519 AAAA…`. */
const PUBLIC_KEY_TYPE = /^(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp\d+)$/i
/** Schemes between a name and its value: `Authorization: Bearer …`. */
const SCHEME_WORD = /^(?:bearer|basic|token)$/i

/** `nextPageToken`, `next-page-token` → `next_page_token`. */
function snake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[-_]+/g, '_')
    .replace(/^_|_$/g, '')
}

/** Some part of every name below, to skip the split for the names that are none of them. */
const NAME_HINT =
  /secret|pass|pwd|token|bearer|credential|key|auth|hash|digest|checksum|integrity|etag|fingerprint|sha|md5|crc|sig|nonce|salt|cursor|id|ssh|ecdsa/i

/** What a value's name says of it: a secret, not a secret, or nothing. */
function classifyName(name: string | undefined): 'secret' | 'not' | undefined {
  if (name === undefined || !NAME_HINT.test(name)) return undefined
  if (PUBLIC_KEY_TYPE.test(name)) return 'not'
  const snaked = snake(name)
  const parts = snaked.split('_')
  // `sha256`, `pubkey256`: a part may carry digits after its word.
  const isNot = (part: string) =>
    NOT_SECRET_PARTS.has(part) || NOT_SECRET_PARTS.has(part.replace(/\d+$/, ''))
  if (parts.some(isNot) || NOT_SECRET_PAIRS.test(snaked)) return 'not'
  if (parts.some((part) => SECRET_PARTS.has(part)) || SECRET_PAIRS.test(snaked)) return 'secret'
  return undefined
}

export function findApiKeys(text: string, out: Detection[]): void {
  // Provider matches first; a token run that overlaps one (`https://ghp_…@`) is that key.
  const keys: Array<[number, number]> = []
  PREFIXED.lastIndex = 0
  for (let m = PREFIXED.exec(text); m !== null; m = PREFIXED.exec(text)) {
    // Prefixes that are also English (`sk-`, `hf_`) need a body with letters and digits.
    const body = m[0].replace(PREFIX, '')
    if (/[0-9]/.test(body) && /[A-Za-z]/.test(body)) {
      out.push({ kind: 'api_key', start: m.index, end: m.index + m[0].length })
      keys.push([m.index, m.index + m[0].length])
    }
  }
  const skip = [...keys, ...pemBlocks(text)].sort((a, b) => a[0] - b[0])
  let next = 0
  const consider = (start: number, end: number) => {
    while (next < skip.length && skip[next]![1] <= start) next++
    if (next < skip.length && skip[next]![0] < end) return
    if (end - start >= CONTEXT_MIN_LENGTH && isSecretToken(text, start, end))
      out.push({ kind: 'api_key', start, end })
  }
  forEachRun(text, CONTEXT_MIN_LENGTH, (runStart, runEnd, classes) => {
    // Longer runs are data (an image, a file), whatever slashes they hold; hex and UUIDs are
    // digests and ids (checked again per segment below).
    if (runEnd - runStart > MAX_TOKEN_LENGTH + 2 || (classes & ~HEXISH) === 0) return
    const parts = (classes & SLASH) === 0 ? undefined : pathParts(text, runStart, runEnd)
    if (parts === undefined) consider(runStart, runEnd)
    else for (const [start, end] of parts) consider(start, end)
  })
}

/**
 * The segments of a run that is a path (`/v1/files/<id>/download`): it has a slash at an
 * edge, or a segment that is a word of 3+ lower-case letters or a version (`files`, `v1`).
 * Undefined for a run that is one token: base64 has `/` too, between random segments
 * (`wJalrXUtnFEMI/K7MDENG/bPxRfiCY…`), which are such a word with odds under 1 in 15.
 */
function pathParts(text: string, start: number, end: number): Array<[number, number]> | undefined {
  // Read in place, without a slice or a split: most runs with a slash are URL paths whose
  // segments are all short.
  let path = text.charCodeAt(start) === 47 || text.charCodeAt(end - 1) === 47
  let long = false
  let from = start
  for (let i = start; i <= end; i++) {
    if (i < end && text.charCodeAt(i) !== 47) continue
    if (i - from >= CONTEXT_MIN_LENGTH) long = true
    else if (!path && isPathWord(text, from, i)) path = true
    from = i + 1
  }
  if (!path) return undefined
  const parts: Array<[number, number]> = []
  if (!long) return parts
  from = start
  for (let i = start; i <= end; i++) {
    if (i < end && text.charCodeAt(i) !== 47) continue
    if (i > from) parts.push([from, i])
    from = i + 1
  }
  return parts
}

/** `files`, `orders`, `v1`: a path segment that is a word of 3+ lower-case letters or a version. */
function isPathWord(text: string, from: number, to: number): boolean {
  const first = text.charCodeAt(from)
  if (first === 118 /* v */ && to - from >= 2 && to - from <= 3) {
    let digits = true
    for (let i = from + 1; i < to; i++) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) digits = false
    }
    if (digits) return true
  }
  if (to - from < 3) return false
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c < 97 || c > 122) return false
  }
  return true
}

/** Classes of token characters, as bits: what a run holds decides what to look at. */
const HEXISH = 1 // 0-9 a-f A-F -
const OTHER = 2 // the other letters, _ +
const SLASH = 4
const PERCENT = 8 // maybe %2B %2F %3D

/** Characters of a base64, base64url or base62 token, by class (0: not a token character). */
const TOKEN_CHAR = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/-%') {
  const code = c.charCodeAt(0)
  TOKEN_CHAR[code] = /[0-9a-fA-F-]/.test(c)
    ? HEXISH
    : c === '/'
      ? SLASH
      : c === '%'
        ? PERCENT
        : OTHER
}

/**
 * Calls `visit` for every maximal run of token characters at least `minLength` long, with up
 * to two `=` of padding, and the classes of characters it holds. Any run that long covers one
 * of every `minLength` positions, so only those are probed, and a probe that lands on a token
 * character is widened to its run: about 0.5 µs per KiB of prose or JSON, where a regex (which
 * must be retried at every position inside a word, or carry a lookbehind) costs 4–9.
 */
function forEachRun(
  text: string,
  minLength: number,
  visit: (start: number, end: number, classes: number) => void,
): void {
  const n = text.length
  let probe = minLength - 1
  while (probe < n) {
    let classes = tokenClass(text, probe)
    if (classes === 0) {
      probe += minLength
      continue
    }
    let start = probe
    for (let k = tokenClass(text, start - 1); k !== 0; k = tokenClass(text, --start - 1))
      classes |= k
    let end = probe + 1
    for (let k = tokenClass(text, end); k !== 0; k = tokenClass(text, ++end)) classes |= k
    if (end - start >= minLength) {
      let padded = end
      while (padded - end < 2 && text.charCodeAt(padded) === 61 /* = */) padded++
      visit(start, padded, classes)
    }
    // `end` is not a token character: the next long run lies wholly after it.
    probe = end + minLength
  }
}

function isTokenChar(c: number): boolean {
  return c < 128 && (TOKEN_CHAR[c]! & ~PERCENT) !== 0
}

/**
 * The class of the token character at `i`, 0 for none. `%` counts only as the start of `%2B`,
 * `%2F` or `%3D` (`+`, `/`, `=` URL-encoded): a data URI of URL-encoded base64 is then one
 * long run (data), not dozens of short "keys".
 */
function tokenClass(text: string, i: number): number {
  const c = text.charCodeAt(i)
  // NaN (outside the text) and non-ASCII fail the first test.
  if (!(c < 128)) return 0
  const k = TOKEN_CHAR[c]!
  if (k !== PERCENT) return k
  const encoded = text.slice(i + 1, i + 3).toUpperCase()
  return encoded === '2B' || encoded === '2F' || encoded === '3D' ? OTHER : 0
}

/** Occurrences of each ASCII character in the token being read (one token at a time). */
const COUNTS = new Uint16Array(128)
const NOT_HEX = /[^0-9a-fA-F-]/

function isSecretToken(text: string, start: number, end: number): boolean {
  let bodyEnd = end
  while (text.charCodeAt(bodyEnd - 1) === 61 /* = */) bodyEnd--
  const length = bodyEnd - start
  if (length > MAX_TOKEN_LENGTH) return false
  if (text[start - 1] === '.' && isTokenChar(text.charCodeAt(start - 2))) return false
  if (text[end] === '.' && isTokenChar(text.charCodeAt(end + 1))) return false
  const body = text.slice(start, bodyEnd)
  // Hex (with dashes: UUIDs) is a digest or an id; most long runs in tool output are, so
  // this one regex test comes before the loop below.
  if (!NOT_HEX.test(body)) return false
  // One pass for the classes, the share of letters in words of 4+ letters, neighbours in
  // order and the counts behind the entropy.
  let digits = 0
  let lower = 0
  let upper = 0
  let inWords = 0
  let run = 0 // letters in the current word: a capital then lower case, or lower case only
  let ascending = 0
  let previous = -2
  let distinct = 0
  COUNTS.fill(0)
  for (let i = start; i < bodyEnd; i++) {
    const c = text.charCodeAt(i) // a token character, so ASCII
    if (c === previous + 1) ascending++
    previous = c
    if (COUNTS[c]!++ === 0) distinct++
    const isLower = c >= 97 && c <= 122
    const isUpper = c >= 65 && c <= 90
    if (c >= 48 && c <= 57) digits++
    else if (isLower) lower++
    else if (isUpper) upper++
    if (isLower) run++
    else {
      if (run >= 4) inWords += run
      run = isUpper ? 1 : 0
    }
  }
  if (run >= 4) inWords += run
  // Words are an identifier or a path. A quarter of neighbours in order, or 32+ characters
  // never repeating (a random string of 32 repeats one with odds 1 − 1/13,000), is an
  // alphabet (`ABC…xyz0123…`, nanoid's), not a key.
  if (lower + upper === 0 || inWords * 2 >= length) return false
  // After a name, letters and digits or both cases; standalone, all three (below).
  if (digits === 0 && (lower === 0 || upper === 0)) return false
  if (ascending * 4 >= length || (length >= STANDALONE_MIN_LENGTH && distinct === length))
    return false
  if (SRI.test(body)) return false
  let bits = 0
  for (let c = 0; c < 128; c++) {
    const k = COUNTS[c]!
    if (k > 0) bits -= (k / length) * Math.log2(k / length)
  }
  const ratio = bits / Math.log2(Math.min(length, 64))
  if (ratio < CONTEXT_MIN_ENTROPY_RATIO) return false
  const [name, scheme] = namesBefore(text, start)
  const said = classifyName(name)
  if (said === 'not') return false
  if (said === 'secret' || classifyName(scheme) === 'secret') return true
  return (
    length >= STANDALONE_MIN_LENGTH &&
    digits > 0 &&
    lower > 0 &&
    upper > 0 &&
    ratio >= STANDALONE_MIN_ENTROPY_RATIO &&
    !decodesToText(body)
  )
}

/** Glue between a name and its value: quotes, spaces, tabs, `:` and `=`. */
function isGlue(c: number): boolean {
  return c === 34 || c === 39 || c === 32 || c === 9 || c === 58 || c === 61
}

function isNameChar(c: number): boolean {
  return isTokenChar(c) && c !== 43 && c !== 47 // letters, digits, `_`, `-`
}

/**
 * The word just before `start` across glue (`"api_key": "`), and, when that word is a scheme
 * (`Bearer`), the word before it too, within {@link NAME_WINDOW} characters of one line.
 */
function namesBefore(text: string, start: number): [string | undefined, string | undefined] {
  const limit = Math.max(0, start - NAME_WINDOW)
  const word = (to: number): [string | undefined, number] => {
    let end = to
    while (end > limit && isGlue(text.charCodeAt(end - 1))) end--
    let from = end
    while (from > limit && isNameChar(text.charCodeAt(from - 1))) from--
    return [from < end ? text.slice(from, end) : undefined, from]
  }
  const [first, at] = word(start)
  if (first === undefined || !SCHEME_WORD.test(first)) return [first, undefined]
  return [word(at)[0], first]
}

/** Whether base64 `body` decodes to bytes that are nearly all printable ASCII. */
function decodesToText(body: string): boolean {
  if (body.length % 4 === 1) return false
  const url = body.includes('-') || body.includes('_')
  const bytes = Buffer.from(body, url ? 'base64url' : 'base64')
  let printable = 0
  for (const b of bytes) if ((b >= 32 && b < 127) || b === 9 || b === 10 || b === 13) printable++
  return printable >= bytes.length * 0.9
}
