/**
 * JSON Web Tokens: three base64url segments (five for JWE) whose first decodes to a JSON
 * object with a string `alg`. The signature may be empty (`alg: none`).
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import type { Detection } from './kinds.js'

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
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    return false
  }
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as Record<string, unknown>)['alg'] === 'string'
  )
}
