/**
 * IP addresses.
 *
 * - IPv4: four dotted octets 0–255 without leading zeros, not part of a longer dotted number
 *   (`1.2.3.4.5`, an OID), glued to a word (`v1.2.3.4`) or numbered by the word before it
 *   (`section 2.3.2.3`, `version 1.2.3.4`).
 * - IPv6: full, compressed and IPv4-suffixed forms as `node:net` accepts them, with at least two
 *   non-empty groups, so `::`, `::1`, times (`12:30:45`), MAC addresses and colon-separated
 *   fingerprints are not addresses.
 *
 * @module
 */
import { isIPv6 } from 'node:net'
import type { Detection } from './kinds.js'

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const IPV4 = new RegExp(`(?<![\\w.])${OCTET}(?:\\.${OCTET}){3}(?!\\w|\\.\\d)`, 'g')

/** Words that number what follows (`section 2.3.2.3`, `version 1.2.3.4`): not an address. */
const NUMBERING =
  /(?:\b(?:section|sect?\.|chapter|clause|article|art\.|figure|fig\.|version|ver\.|release|build|v)|§)\s*$/i
const NUMBERING_WINDOW = 12

/**
 * Every IPv6 address has two colons with at most four hex digits between them; that anchor is
 * cheap to scan for (it starts with a literal), where a pattern starting with a hex digit would
 * be tried at every `a`–`f` of the prose.
 */
const IPV6_ANCHOR = /:[0-9A-Fa-f]{0,4}:/g
/** From the candidate's start: a hex group or `::`, up to seven `:group`s, an IPv4 tail. */
const IPV6 = /(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}/y

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
}

export function findIps(text: string, out: Detection[]): void {
  IPV4.lastIndex = 0
  for (let m = IPV4.exec(text); m !== null; m = IPV4.exec(text)) {
    const before = text.slice(Math.max(0, m.index - NUMBERING_WINDOW), m.index)
    if (!NUMBERING.test(before))
      out.push({ kind: 'ip', start: m.index, end: m.index + m[0].length })
  }
  IPV6_ANCHOR.lastIndex = 0
  for (let a = IPV6_ANCHOR.exec(text); a !== null; a = IPV6_ANCHOR.exec(text)) {
    let start = a.index
    while (start > 0 && a.index - start < 4 && isHex(text.charCodeAt(start - 1))) start--
    // Glued to a word, a longer colon list or a dotted number: not an address of its own.
    const before = text.charCodeAt(start - 1)
    if (isWordChar(before) || before === 58 /* : */ || before === 46 /* . */) {
      IPV6_ANCHOR.lastIndex = a.index + 1
      continue
    }
    IPV6.lastIndex = start
    const m = IPV6.exec(text)
    IPV6_ANCHOR.lastIndex = a.index + 1
    if (m === null) continue
    let candidate = m[0]
    const end = start + candidate.length
    const next = text.charCodeAt(end)
    IPV6_ANCHOR.lastIndex = Math.max(IPV6_ANCHOR.lastIndex, end)
    // Cut off at eight groups, or glued to a word: part of something longer.
    if (next === 58 /* : */ || isWordChar(next)) continue
    // "addr 2001:db8::1: reachable": the trailing colon is punctuation.
    if (candidate.endsWith(':') && !candidate.endsWith('::')) candidate = candidate.slice(0, -1)
    if (!isIPv6(candidate) || nonEmptyGroups(candidate) < 2) continue
    out.push({ kind: 'ip', start, end: start + candidate.length })
  }
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
}

function nonEmptyGroups(candidate: string): number {
  let groups = 0
  for (const part of candidate.split(':')) if (part !== '') groups++
  return groups
}
