/**
 * Email addresses and phone numbers.
 *
 * Email is the practical RFC 5321 shape: a local part of letters, digits and `._%+-` (at most
 * 64, no leading, trailing or doubled dot), `@`, dot-separated labels, and a top-level domain
 * of at least two letters. Quoted local parts, IP-literal domains and non-ASCII addresses are
 * not found. Image and source names (`icon@2x.png`), credentials in a URL
 * (`https://user:token@host/`) and scp-style remotes (`git@github.com:acme/app.git`) are not
 * addresses.
 *
 * Phone numbers are found in three shapes, each with separators that a person would write:
 * - international: `+` and 8–15 digits (E.164), grouped by single spaces, dots or dashes,
 *   optionally with a parenthesised group (`+1 (415) 555-2671`, `+44 (0)20 7946 0958`);
 * - North American: `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1-415-555-2671`, with
 *   area and exchange codes starting 2–9 as NANP assigns them;
 * - national with a trunk `0`: `030 1234567`, `020 7946 0958`, `06 12 34 56 78`,
 *   `089/12345678`: 9–12 digits, the groups after the first joined by one kind of separator.
 *
 * A bare run of digits without `+` (`4155552671`) is never a phone number: it is as likely a
 * Unix timestamp, an order number or an id. Nor is anything inside a longer run of digits,
 * a date, a time or a dotted version.
 *
 * @module
 */
import type { Detection } from './kinds.js'

const LOCAL = new Uint8Array(128)
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-')
  LOCAL[c.charCodeAt(0)] = 1

const MAX_LOCAL = 64
const MAX_DOMAIN = 253
const URL_USERINFO = /\/\/[^\s/@]*$/
const SCP_PATH = /[\w~./-]/

/** Labels, then a TLD of letters; sticky, run from just after the `@`. */
const DOMAIN =
  /(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63})(?![A-Za-z0-9-])/y

/** File extensions that are not top-level domains: `logo@2x.png` is a file name. */
const FILE_EXTENSIONS: ReadonlySet<string> = new Set(
  'png jpg jpeg gif svg webp bmp tif tiff ico css js mjs cjs ts tsx jsx json txt html htm xml yaml yml lock map'.split(
    ' ',
  ),
)

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
}

/** Emails: each `@` is looked at once, the local part read backwards (bounded), the domain forwards. */
export function findEmails(text: string, out: Detection[]): void {
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let start = at
    while (start > 0 && at - start <= MAX_LOCAL) {
      const c = text.charCodeAt(start - 1)
      if (c >= 128 || LOCAL[c] === 0) break
      start--
    }
    if (at - start > MAX_LOCAL) continue
    // Leading punctuation belongs to the prose around the address ("...bob@", "-bob@").
    while (start < at && !isAlnum(text.charCodeAt(start)) && text[start] !== '_') start++
    if (start === at || text[at - 1] === '.' || text.slice(start, at).includes('..')) continue
    // `https://user:token@host/`: credentials in a URL, left to the api_key rule.
    const before = text[start - 1]
    if (
      (before === '/' || before === ':') &&
      URL_USERINFO.test(text.slice(Math.max(0, start - MAX_LOCAL * 2), start))
    )
      continue
    DOMAIN.lastIndex = at + 1
    const m = DOMAIN.exec(text)
    if (m === null || m[0].length > MAX_DOMAIN) continue
    if (FILE_EXTENSIONS.has(m[1]!.toLowerCase())) continue
    // `git@github.com:acme/app.git`: an scp-style remote, a login at a host, not an address.
    if (text[DOMAIN.lastIndex] === ':' && SCP_PATH.test(text[DOMAIN.lastIndex + 1] ?? '')) continue
    out.push({ kind: 'email', start, end: DOMAIN.lastIndex })
  }
}

/**
 * `+`, country code and groups, tried at each `+` (rare in text, so cheap to find). Every
 * group after the first needs a separator (or a parenthesised group), so a digit run splits
 * one way only and a failed match costs O(length).
 */
const INTERNATIONAL =
  /\+[1-9]\d{0,14}(?:[ .-]\d{1,14}|[ .-]?\(\d{1,4}\)[ .-]?\d{1,14}){0,6}(?![\w+]|[ .-]?\d)/y

/**
 * The national shapes. What may not come before them (a word, `+`, `.`, `/`, `-`, or a digit
 * and a separator: the tail of a longer number) is checked in code, because a leading
 * lookbehind makes V8 try the whole pattern at every position.
 */
const NORTH_AMERICAN =
  /(?:1[ .-]?)?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![\w+:]|\.\d)/g

const TRUNK = /\b0[1-9]\d{0,4}((?:[ /-]\d{2,8}){1,4})(?![\w+:]|\.\d)/g

const DATE_LIKE = /\d{4}-\d{2}-\d{2}|\d{2}[./-]\d{2}[./-]\d{4}/

/** `+37.774929`: a coordinate; dotted phone numbers have a dot between every group. */
function oneDot(candidate: string): boolean {
  const first = candidate.indexOf('.')
  return first !== -1 && candidate.indexOf('.', first + 1) === -1
}

function countDigits(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) n++
  }
  return n
}

function isWordChar(c: number): boolean {
  return isAlnum(c) || c === 95
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

/**
 * Whether the match `[start, end)` continues what is around it: a word or one of `punct` just
 * before, or a digit joined by the number's own separator on either side (`12 415 555 2671`).
 * Another separator is not a join: `192.0.2.1 415-555-2671` holds a phone number.
 */
function glued(text: string, start: number, end: number, punct: string, sep: string): boolean {
  const before = text.charCodeAt(start - 1)
  if (!Number.isNaN(before) && (isWordChar(before) || punct.includes(text[start - 1]!))) return true
  if (sep === '') return false
  return (
    (text[start - 1] === sep && isDigit(text.charCodeAt(start - 2))) ||
    (text[end] === sep && isDigit(text.charCodeAt(end + 1)))
  )
}

export function findPhones(text: string, out: Detection[]): void {
  for (let plus = text.indexOf('+'); plus !== -1; plus = text.indexOf('+', plus + 1)) {
    if (glued(text, plus, plus, '+', '')) continue
    INTERNATIONAL.lastIndex = plus
    const m = INTERNATIONAL.exec(text)
    if (m === null) continue
    const digits = countDigits(m[0])
    if (digits < 8 || digits > 15 || DATE_LIKE.test(m[0]) || oneDot(m[0])) continue
    out.push({ kind: 'phone', start: plus, end: plus + m[0].length })
  }
  NORTH_AMERICAN.lastIndex = 0
  for (let m = NORTH_AMERICAN.exec(text); m !== null; m = NORTH_AMERICAN.exec(text)) {
    const end = m.index + m[0].length
    // The separator before the last four digits is the number's own.
    if (glued(text, m.index, end, '+./-', m[0][m[0].length - 5]!)) {
      NORTH_AMERICAN.lastIndex = m.index + 1
      continue
    }
    out.push({ kind: 'phone', start: m.index, end })
  }
  TRUNK.lastIndex = 0
  for (let m = TRUNK.exec(text); m !== null; m = TRUNK.exec(text)) {
    const end = m.index + m[0].length
    const groups = m[1]!
    const sep = groups.replace(/\d+/g, '').slice(-1)
    if (glued(text, m.index, end, '+./:-', sep)) {
      TRUNK.lastIndex = m.index + 1
      continue
    }
    const digits = countDigits(m[0])
    if (digits < 9 || digits > 12 || !trunkSeparatorsOk(groups)) continue
    out.push({ kind: 'phone', start: m.index, end })
  }
}

/**
 * After the area code one kind of separator, and `/` only right after the area code: dates
 * (`07/12/2026 1030`, `07-12-2026 10`) mix them, phone numbers do not.
 */
function trunkSeparatorsOk(groups: string): boolean {
  let sep = ''
  for (let i = 0; i < groups.length; i++) {
    const c = groups[i]!
    if (c >= '0' && c <= '9') continue
    if (i === 0) continue
    if (c === '/') return false
    if (sep === '') sep = c
    else if (c !== sep) return false
  }
  return true
}
