/**
 * PEM private keys: `-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----` to the
 * next `-----END … PRIVATE KEY-----`; when the end was cut off (or another BEGIN comes first),
 * to the end of the base64 body. Also the extent of every PEM block of any label, so that the
 * api_key rule leaves the base64 lines of certificates and public keys alone.
 *
 * @module
 */
import type { Detection } from './kinds.js'

const PEM_BEGIN = /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----/g
const PEM_END = /-----END (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----/y

/**
 * A body cut off before its END line: base64 runs, whitespace, the JSON escapes `\n`/`\r` that
 * carry the newlines when the key sits in a JSON string, and the `Proc-Type:`/`DEK-Info:`
 * headers of legacy encrypted keys. Sticky, and nothing after it can fail, so it never
 * backtracks.
 */
const BODY = /(?:(?:Proc-Type|DEK-Info):[^\r\n\\]*|[A-Za-z0-9+/=]+|\\[nr]|[ \t\r\n]+)+/y

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
    // A BEGIN line alone (`indexOf("-----BEGIN PRIVATE KEY-----")` in code) holds no key.
    if (hasBody(text, bodyStart, end)) out.push({ kind: 'private_key', start: m.index, end })
    PEM_BEGIN.lastIndex = Math.max(PEM_BEGIN.lastIndex, end)
  }
}

/** The least base64 a key body has: the smallest real key (Ed25519, PKCS#8) has 64. */
const MIN_BODY_CHARS = 16

function hasBody(text: string, from: number, to: number): boolean {
  let count = 0
  for (let i = from; i < to && count < MIN_BODY_CHARS; i++) {
    const c = text.charCodeAt(i)
    if (
      (c >= 65 && c <= 90) ||
      (c >= 97 && c <= 122) ||
      (c >= 48 && c <= 57) ||
      c === 43 ||
      c === 47
    )
      count++
  }
  return count >= MIN_BODY_CHARS
}

/** The next `-----END … PRIVATE KEY-----` at or after `from`, or -1. */
function findEnd(text: string, from: number): number {
  for (let i = text.indexOf('-----END ', from); i !== -1; i = text.indexOf('-----END ', i + 1)) {
    PEM_END.lastIndex = i
    if (PEM_END.test(text)) return i
  }
  return -1
}

/** Where the base64 body starting at `from` ends: after its last base64 character. */
function endOfBody(text: string, from: number): number {
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

const ANY_BEGIN = /-----BEGIN [A-Z0-9 ]{1,40}-----/g
const ANY_END = /(?:\s|\\[nr])*-----END [A-Z0-9 ]{1,40}-----/y

/**
 * `[start, end)` of every PEM block of any label (certificates, public keys, parameters), END
 * line or cut-off body included, in order.
 */
export function pemBlocks(text: string): Array<[number, number]> {
  if (!text.includes('-----BEGIN ')) return []
  const blocks: Array<[number, number]> = []
  ANY_BEGIN.lastIndex = 0
  for (let m = ANY_BEGIN.exec(text); m !== null; m = ANY_BEGIN.exec(text)) {
    const end = endOfBody(text, m.index + m[0].length)
    ANY_END.lastIndex = end
    blocks.push([m.index, ANY_END.test(text) ? ANY_END.lastIndex : end])
    ANY_BEGIN.lastIndex = Math.max(ANY_BEGIN.lastIndex, end)
  }
  return blocks
}
