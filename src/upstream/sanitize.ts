/**
 * Turning whatever an upstream (or its transport) threw into a short, single-line message that is
 * safe to show the model: no host paths, no stack, no query strings, no raw bodies.
 *
 * @module
 */

import { stripInvisible } from '../text.js'

/**
 * Longest message text taken from an upstream, in characters. Generous on purpose: the engine
 * redacts granted secrets (a JWT is often 600–1500 characters) before its own, shorter cap, and a
 * secret cut here would no longer match the redactor.
 */
export const MAX_UPSTREAM_MESSAGE_CHARS = 2000

const WINDOWS_PATH = /\b[A-Za-z]:\\[^\s'"`]*/g
const FILE_URL = /file:\/\/\S*/gi
const URL_QUERY = /(https?:\/\/[^\s?#'"]+)[?#][^\s'"]*/gi
const URL_USERINFO = /(https?:\/\/)[^\s/@'"]+@/gi

/**
 * Reduces `text` to its first line, strips paths, URL credentials and queries, collapses
 * whitespace and caps the length (with an ellipsis).
 */
export function sanitizeMessage(text: string, maxChars = MAX_UPSTREAM_MESSAGE_CHARS): string {
  const firstLine = stripInvisible(text.split(/\r?\n/, 1)[0] ?? '')
  const cleaned = firstLine
    .replace(FILE_URL, '<path>')
    .replace(URL_USERINFO, '$1')
    .replace(URL_QUERY, '$1')
    // URLs keep their path; only bare filesystem paths are replaced.
    .replace(
      /(https?:\/\/\S+)|(?<![\w:/.])\/(?:[\w.@+-]+\/)*[\w.@+-]+\/?/g,
      (_match: string, url: string | undefined) => url ?? '<path>',
    )
    .replace(WINDOWS_PATH, '<path>')
    .replace(/\s+/g, ' ')
    .trim()
  return cleaned.length > maxChars ? `${cleaned.slice(0, maxChars - 1)}…` : cleaned
}

/** Strips the SDK's `MCP error <code>: ` prefix from an McpError message. */
export function stripMcpPrefix(message: string): string {
  return message.replace(/^(?:MCP error -?\d+: )+/, '')
}
