/**
 * The escaping emitter (TP-08). Every piece of upstream text that reaches the generated
 * TypeScript goes through one of these functions; nothing is concatenated raw. Comments cannot
 * be closed (`*\/` is broken), strings are JSON-escaped, identifiers are validated by the caller.
 *
 * @module
 */

import { stripInvisible } from '../text.js'

// Line terminators JS recognises; a lone \u2028 would end a `//` comment.
const LINE_BREAKS = /\r\n|[\r\n\u2028\u2029]/g

/**
 * Upstream text made safe for the inside of a block comment: one string, `\n` separated.
 * Invisible characters (controls, zero-width, bidi, tags: src/text.ts) go, so that neither a
 * reviewer nor the model reads something the other does not (IPI-04).
 */
export function commentText(text: string, maxChars: number): string {
  let out = stripInvisible(String(text).replace(LINE_BREAKS, '\n'))
    .replace(/\r/g, '')
    .replace(/\t/g, '  ')
  if (out.length > maxChars) out = `${out.slice(0, Math.max(0, maxChars))}…`
  // `*/` closes the comment; `*\/` reads the same and cannot.
  return out.replace(/\*\//g, '*\\/').trim()
}

/**
 * A JSDoc block from lines that are already `commentText`-safe (each may hold `\n`).
 * Returns '' when there is nothing to say.
 */
export function jsDoc(lines: readonly string[], indent: string): string {
  const flat = lines.flatMap((l) => l.split('\n')).map((l) => l.trimEnd())
  while (flat.length > 0 && flat[flat.length - 1] === '') flat.pop()
  while (flat.length > 0 && flat[0] === '') flat.shift()
  if (flat.length === 0) return ''
  if (flat.length === 1) return `${indent}/** ${flat[0]} */\n`
  return `${indent}/**\n${flat.map((l) => (l === '' ? `${indent} *` : `${indent} * ${l}`)).join('\n')}\n${indent} */\n`
}

/**
 * A string literal type or property key: JSON escaping, plus `\uXXXX` for line separators and
 * invisible characters, so the committed file reads exactly as the compiler reads it.
 */
export function stringLiteral(value: string): string {
  return JSON.stringify(String(value))
    .replace(
      /[\u2028\u2029\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    )
    .replace(/[\u{E0000}-\u{E007F}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)
}

/** A property key: bare when it is a plain ASCII identifier, else a quoted string. */
export function propertyKey(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) && name !== '__proto__'
    ? name
    : stringLiteral(name)
}

/** A JSON value as comment text (for `@default`, `@example`), cut and comment-safe. */
export function jsonForComment(value: unknown, maxChars: number): string {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return commentText(text, maxChars)
}

/** `get_sum` / `read-graph` / `readGraph` → `GetSum` / `ReadGraph`; ASCII only, never empty. */
export function pascalCase(name: string): string {
  const parts = name.split(/[^A-Za-z0-9]+/).filter((p) => p !== '')
  const out = parts.map((p) => p[0]!.toUpperCase() + p.slice(1)).join('')
  if (out === '') return 'X'
  return /^[0-9]/.test(out) ? `_${out}` : out
}

/**
 * The first sentence of a description, comment-safe, whitespace folded, cut at 160 characters:
 * what an index line or a compact declaration says about a tool.
 */
export function firstSentence(description: unknown): string {
  if (typeof description !== 'string') return ''
  const text = commentText(description, 2000).replace(/\s+/g, ' ').trim()
  const match = /^(.+?[.!?])(\s|$)/.exec(text)
  const sentence = match?.[1] ?? text
  return sentence.length > 160 ? `${sentence.slice(0, 159)}…` : sentence
}
