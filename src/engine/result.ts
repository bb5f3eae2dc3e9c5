/**
 * Mapping an upstream `CallToolResult` to the value the guest receives, and sanitising messages
 * that cross into the guest or the model (DESIGN.md §3 "Guest API", invariant 7).
 *
 * @module
 */
import { stripInvisible } from '../text.js'
import type { Json } from '../types.js'

/** The parts of an MCP `CallToolResult` the engine reads. */
export interface UpstreamToolResult {
  content?: unknown[]
  structuredContent?: unknown
  isError?: boolean
  [key: string]: unknown
}

/**
 * The guest's view of a tool result: `structuredContent` if the tool has one, else the parsed JSON
 * of a single text block, else the text, else the content array.
 */
export function mapToolResult(result: UpstreamToolResult): Json {
  if (result.structuredContent !== undefined && result.structuredContent !== null) {
    return result.structuredContent as Json
  }
  const content = Array.isArray(result.content) ? result.content : []
  if (content.length === 1) {
    const only = content[0] as { type?: unknown; text?: unknown }
    if (only?.type === 'text' && typeof only.text === 'string') {
      const text = only.text
      try {
        return JSON.parse(text) as Json
      } catch {
        // Not JSON: the text itself is the value.
        return text
      }
    }
  }
  return content as Json
}

/** The text an upstream put in an `isError` result, for the guest's error message. */
export function errorText(result: UpstreamToolResult): string {
  const texts = (Array.isArray(result.content) ? result.content : [])
    .map((c) => c as { type?: unknown; text?: unknown })
    .filter((c) => c.type === 'text' && typeof c.text === 'string')
    .map((c) => c.text as string)
  return texts.length > 0 ? texts.join(' ') : 'the tool reported an error'
}

/** Longest message that crosses into the guest or the model. */
export const MAX_MESSAGE_CHARS = 500

const STACK_FRAME = /\n\s+at\s.*$/gs
const HOST_PATH = /(?:file:\/\/)?(?:\/[\w.@-]+)*\/node_modules\/[^\s'")]*/g

/**
 * Makes a message safe to cross a trust boundary: no stack frames, no `node_modules` paths,
 * no control or invisible characters (src/text.ts), one line, capped. Secret redaction is
 * applied by the caller.
 */
export function sanitizeMessage(message: string): string {
  let text = message.replace(STACK_FRAME, '').replace(HOST_PATH, '<internal>')
  text = stripInvisible(text.replace(/\r?\n/g, ' ')).replace(/\t/g, ' ').trim()
  if (text.length > MAX_MESSAGE_CHARS) text = `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…`
  return text.length > 0 ? text : 'error'
}
