/**
 * The outer tools' wire shapes: input and output JSON Schemas of `execute_code` and
 * `search_tools`, and the rendering of an execution result as an MCP `CallToolResult`
 * (structuredContent + a compact text block + `isError`). DESIGN.md section 3 is the contract.
 *
 * @module
 */
import type { ExecutionError, ExecutionResult, Json } from '../types.js'
import type { SearchAnswer } from './contracts.js'

export const EXECUTE_CODE = 'execute_code'
export const SEARCH_TOOLS = 'search_tools'

/** `search_tools` returns at most this many matches, whatever `limit` asks for. */
export const MAX_SEARCH_LIMIT = 50
export const DEFAULT_SEARCH_LIMIT = 5

export const executeCodeInputSchema = {
  type: 'object',
  properties: {
    code: {
      type: 'string',
      description: 'TypeScript: the body of an async function.',
    },
  },
  required: ['code'],
  additionalProperties: false,
} as const

export const executeCodeOutputSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    result: { description: 'The returned value (JSON); null when nothing was returned.' },
    logs: { type: 'array', items: { type: 'string' } },
    calls: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          tool: { type: 'string' },
          ok: { type: 'boolean' },
          ms: { type: 'number' },
          decision: { type: 'string' },
          code: { type: 'string' },
        },
        required: ['tool', 'ok', 'ms', 'decision'],
      },
    },
    warnings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          code: { type: 'string' },
          message: { type: 'string' },
          path: { type: 'string' },
          line: { type: 'integer' },
        },
        required: ['code', 'message'],
      },
    },
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        line: { type: 'integer' },
        column: { type: 'integer' },
        diagnostics: { type: 'array', items: { type: 'object' } },
      },
      required: ['code', 'message'],
    },
  },
  required: ['ok', 'result', 'logs', 'calls'],
} as const

export const searchToolsInputSchema = {
  type: 'object',
  properties: {
    query: { type: 'string', description: 'Keywords, or a tool name.' },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_SEARCH_LIMIT,
      description: `How many matches to return (default ${DEFAULT_SEARCH_LIMIT}).`,
    },
  },
  required: ['query'],
  additionalProperties: false,
} as const

export const searchToolsOutputSchema = {
  type: 'object',
  properties: {
    matches: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          tool: { type: 'string' },
          declaration: { type: 'string' },
          score: { type: 'number' },
        },
        required: ['tool', 'declaration', 'score'],
      },
    },
    more: {
      type: 'array',
      items: { type: 'string' },
      description: 'Further matches, named only: they did not fit the answer.',
    },
  },
  required: ['matches'],
} as const

export const SEARCH_TOOLS_DESCRIPTION =
  'Find tools by keywords; returns their TypeScript declarations for execute_code.'

/** An MCP `CallToolResult` as the gateway builds it. */
export interface OuterToolResult {
  [key: string]: unknown
  content: Array<{ type: 'text'; text: string }>
  structuredContent?: Record<string, unknown>
  isError?: boolean
}

/**
 * A tool-level error with text only: a tool with an outputSchema may omit structuredContent
 * when `isError` is set, and must not send content that breaks the schema.
 */
export function toolError(message: string): OuterToolResult {
  return { content: [{ type: 'text', text: message }], isError: true }
}

function formatError(error: ExecutionError): string {
  const where =
    error.line === undefined
      ? ''
      : ` (line ${error.line}${error.column === undefined ? '' : `, column ${error.column}`})`
  const lines = [`error ${error.code}${where}: ${error.message}`]
  for (const d of error.diagnostics ?? []) {
    lines.push(`  ${d.line}:${d.column} ${d.message}${d.hint === undefined ? '' : ` (${d.hint})`}`)
  }
  return lines.join('\n')
}

/**
 * The text block: the result as JSON, then the logs, then the error with its position. Clients
 * that ignore structuredContent (many do) still show the model everything it needs.
 */
export function renderExecutionText(result: ExecutionResult): string {
  const parts: string[] = []
  if (result.ok) parts.push(JSON.stringify(result.result ?? null))
  if (result.logs.length > 0) parts.push(`logs:\n${result.logs.join('\n')}`)
  if (result.warnings !== undefined && result.warnings.length > 0) {
    const lines = result.warnings.map(
      (w) => `- ${w.path === undefined ? '' : `${w.path}: `}${w.message} (${w.code})`,
    )
    parts.push(`warnings:\n${lines.join('\n')}`)
  }
  if (result.error !== undefined) parts.push(formatError(result.error))
  return parts.join('\n\n')
}

/** An execution result as a `CallToolResult`; `isError` exactly when `ok` is false. */
export function toCallToolResult(result: ExecutionResult): OuterToolResult {
  const structured: Record<string, unknown> = {
    ok: result.ok,
    result: result.result === undefined ? null : (result.result as Json),
    logs: result.logs,
    calls: result.calls,
  }
  if (result.warnings !== undefined && result.warnings.length > 0)
    structured['warnings'] = result.warnings
  if (result.error !== undefined) structured['error'] = result.error
  return {
    content: [{ type: 'text', text: renderExecutionText(result) }],
    structuredContent: structured,
    ...(result.ok ? {} : { isError: true }),
  }
}

/** A failed execution that never reached the engine (bad arguments, an engine bug). */
export function failedExecution(code: string, message: string): OuterToolResult {
  return toCallToolResult({
    ok: false,
    result: undefined,
    logs: [],
    calls: [],
    error: { code, message },
  })
}

/** A `search_tools` answer: declarations, best first, then the matches that did not fit, named. */
export function toSearchResult({ matches, more }: SearchAnswer): OuterToolResult {
  const parts = matches.map((m) => `// ${m.tool}\n${m.declaration}`)
  if (more.length > 0)
    parts.push(`More matches (search for one by name to see it): ${more.join(', ')}`)
  const text = parts.length === 0 ? 'No matching tools.' : parts.join('\n\n')
  return {
    content: [{ type: 'text', text }],
    structuredContent: more.length === 0 ? { matches } : { matches, more },
  }
}
