/**
 * IP addresses.
 *
 * - IPv4: four dotted octets 0–255 without leading zeros, not part of a longer dotted number
 *   (`1.2.3.4.5`, an OID) nor glued to a word (`v1.2.3.4`).
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

/** A candidate: a hex group or `:` and then up to seven `:group`s, maybe an IPv4 tail. */
const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}/g

function isHexAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
}

export function findIps(text: string, out: Detection[]): void {
  IPV4.lastIndex = 0
  for (let m = IPV4.exec(text); m !== null; m = IPV4.exec(text)) {
    out.push({ kind: 'ip', start: m.index, end: m.index + m[0].length })
  }
  if (!text.includes(':')) return
  IPV6.lastIndex = 0
  for (let m = IPV6.exec(text); m !== null; m = IPV6.exec(text)) {
    let candidate = m[0]
    const next = text.charCodeAt(m.index + candidate.length)
    // Cut off at eight groups, or glued to a word: part of something longer.
    if (next === 58 /* : */ || isHexAlnum(next)) continue
    // "addr 2001:db8::1: reachable": the trailing colon is punctuation.
    if (candidate.endsWith(':') && !candidate.endsWith('::')) candidate = candidate.slice(0, -1)
    if (!isIPv6(candidate) || nonEmptyGroups(candidate) < 2) continue
    out.push({ kind: 'ip', start: m.index, end: m.index + candidate.length })
  }
}

function nonEmptyGroups(candidate: string): number {
  let groups = 0
  for (const part of candidate.split(':')) if (part !== '') groups++
  return groups
}
