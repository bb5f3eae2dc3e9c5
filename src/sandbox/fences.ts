/**
 * Markdown fences around the code. Models often send the program as they would show it in chat:
 *
 *     ```ts
 *     return 1 + 1
 *     ```
 *
 * When the whole code is one fenced block the intent is unambiguous, so the fence lines become
 * empty lines and the program inside runs: line numbers stay those of the code as sent. Anything
 * else (text around the block, two blocks, a fence inside a template string) is left alone.
 *
 * @module
 */

const OPENING = /^[ \t]*(`{3,}|~{3,})[ \t]*[\w+#.-]*[ \t]*$/
const CLOSING = /^[ \t]*(`{3,}|~{3,})[ \t]*$/

/** `code` with the fence lines of a single fenced block blanked, else `code` itself. */
export function stripFences(code: string): string {
  if (!code.includes('```') && !code.includes('~~~')) return code
  const lines = code.split('\n')
  let first = 0
  while (first < lines.length && lines[first]!.trim() === '') first++
  let last = lines.length - 1
  while (last > first && lines[last]!.trim() === '') last--
  if (last <= first) return code
  const open = OPENING.exec(lines[first]!.replace(/\r$/, ''))
  const close = CLOSING.exec(lines[last]!.replace(/\r$/, ''))
  if (open === null || close === null || open[1]![0] !== close[1]![0]) return code
  // A fence line between them means more than one block (or text between blocks).
  for (let i = first + 1; i < last; i++) {
    if (/^[ \t]*(`{3,}|~{3,})/.test(lines[i]!)) return code
  }
  lines[first] = ''
  lines[last] = ''
  return lines.join('\n')
}
