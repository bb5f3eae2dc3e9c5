/**
 * Progressive disclosure: a one-line-per-tool index, a BM25 search over names and descriptions
 * (`search_tools`), and the `execute_code` description that holds either the full declarations
 * or, past a byte budget, the index and a pointer to `search_tools`.
 *
 * @module
 */
import type { BindingTool } from './model.js'
import type { DeclarationOptions, ToolFragment } from './declarations.js'
import { buildFragments, renderDts, renderToolSnippet } from './declarations.js'
import { commentText } from './emit.js'

/** One hit of `search`. `declaration` is TypeScript the model can read and call from. */
export interface SearchHit {
  server: string
  name: string
  ident: string
  score: number
  declaration: string
}

/** A search index over one set of tools (build once per principal view). */
export interface ToolSearchIndex {
  /** Best matches first, only those that match at all; `limit` is clamped to 1..`MAX_SEARCH_LIMIT`. */
  search(query: string, limit?: number): SearchHit[]
}

/** The most hits one search returns. */
export const MAX_SEARCH_LIMIT = 50

// Field weights: a query word in the tool's name says far more than one in prose.
const NAME_WEIGHT = 3
const TITLE_WEIGHT = 2
const SERVER_WEIGHT = 1.5
const TEXT_WEIGHT = 1
const K1 = 1.2
const B = 0.75

const STOPWORDS = new Set(
  'a an and are as at be by can for from has have if in into is it its of on or that the this to was will with you your'.split(
    ' ',
  ),
)

/**
 * Splits text into lowercase search terms: `read_graph`, `read-graph` and `readGraph` all give
 * `read`, `graph`. Plurals are folded (`entities` → `entity`), stopwords dropped.
 */
export function tokenize(text: string): string[] {
  return String(text)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((t) => t.length > 1 && !STOPWORDS.has(t))
    .map(stem)
}

function stem(term: string): string {
  if (term.length > 4 && term.endsWith('ies')) return `${term.slice(0, -3)}y`
  if (term.length > 3 && term.endsWith('s') && !term.endsWith('ss') && !term.endsWith('us'))
    return term.slice(0, -1)
  return term
}

interface Doc {
  readonly fragment: ToolFragment
  readonly tf: Map<string, number>
  readonly length: number
  readonly snippet: string
}

/**
 * Builds a BM25F-style index: terms from the tool name and identifier (weight 3), title (2),
 * server (1.5), description and argument names and descriptions (1). A query equal to the
 * tool's name, identifier or `server.tool` gets a bonus so an exact name always comes first.
 *
 * @example createSearchIndex(tools).search('knowledge graph entities', 3)
 */
export function createSearchIndex(
  tools: readonly BindingTool[],
  options: DeclarationOptions = {},
): ToolSearchIndex {
  const { fragments } = buildFragments(tools, options)
  const docs: Doc[] = fragments.map((f) => {
    const tf = new Map<string, number>()
    let length = 0
    const add = (text: string, weight: number): void => {
      for (const term of tokenize(text)) {
        tf.set(term, (tf.get(term) ?? 0) + weight)
        length += weight
      }
    }
    const def = f.tool.definition
    add(`${f.tool.name} ${f.tool.ident === f.tool.name ? '' : f.tool.ident}`, NAME_WEIGHT)
    if (typeof def.title === 'string') add(def.title, TITLE_WEIGHT)
    add(f.tool.server, SERVER_WEIGHT)
    if (typeof def.description === 'string') add(def.description.slice(0, 4000), TEXT_WEIGHT)
    add(argumentText(def.inputSchema), TEXT_WEIGHT)
    return { fragment: f, tf, length, snippet: renderToolSnippet(f) }
  })
  const df = new Map<string, number>()
  for (const d of docs) for (const term of d.tf.keys()) df.set(term, (df.get(term) ?? 0) + 1)
  const avgLength = docs.reduce((s, d) => s + d.length, 0) / Math.max(1, docs.length) || 1

  return {
    search(query: string, limit = 5): SearchHit[] {
      const n = Math.min(
        MAX_SEARCH_LIMIT,
        Math.max(1, Math.trunc(Number.isFinite(limit) ? limit : 5)),
      )
      const terms = [...new Set(tokenize(query))]
      const exact = String(query).trim().toLowerCase()
      const hits: SearchHit[] = []
      for (const d of docs) {
        let score = 0
        for (const term of terms) {
          const tf = d.tf.get(term)
          if (tf === undefined) continue
          const dfi = df.get(term) ?? 0
          const idf = Math.log(1 + (docs.length - dfi + 0.5) / (dfi + 0.5))
          score += (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * d.length) / avgLength))
        }
        const t = d.fragment.tool
        const names = [
          t.name,
          t.ident,
          `${t.server}.${t.name}`,
          `${t.server}.${t.ident}`,
          d.fragment.path,
        ]
        if (exact !== '' && names.some((x) => x.toLowerCase() === exact)) score += 10
        if (score > 0) {
          hits.push({
            server: t.server,
            name: t.name,
            ident: t.ident,
            score: round(score),
            declaration: d.snippet,
          })
        }
      }
      hits.sort((a, b) => b.score - a.score || (a.server + a.ident < b.server + b.ident ? -1 : 1))
      return hits.slice(0, n)
    },
  }
}

/**
 * One line per tool: `tools.memory.search_nodes({ query }) — Search for nodes in the knowledge graph.`
 * Optional arguments carry `?`; the text is the description's first sentence, cut at 160 characters.
 */
export function compactIndex(
  tools: readonly BindingTool[],
  options: DeclarationOptions = {},
): string {
  return indexLines(buildFragments(tools, options).fragments).join('\n')
}

/** Options of `renderDescription`. */
export interface DescriptionOptions extends DeclarationOptions {
  /** Largest description, in UTF-8 bytes, that may carry the full declarations. */
  readonly budgetBytes: number
}

/** The contract the model writes against; the head of every `execute_code` description. */
export const EXECUTE_CODE_HEADER = [
  'Run TypeScript that calls the tools below. `code` is the body of an async function:',
  '- use `await` at the top level; `return` a JSON value to make it the result (without `return`, the value of the last expression statement is the result).',
  '- call a tool as `await tools.<server>.<tool>(args)`; every call returns a Promise, so run independent calls in parallel with `await Promise.all([...])`.',
  '- a failed call rejects with an Error whose `.code` says why (TOOL_ERROR, TOOL_DENIED, INVALID_ARGS, …); use try/catch to handle it.',
  '- `console.log/info/warn/error` output comes back in `logs`. There is no fetch, require, process, timer, filesystem or network.',
  '- you get `{ ok, result, logs, calls, error? }`; `error` has a `code` and the line and column in your code.',
].join('\n')

/**
 * The `execute_code` tool description: `EXECUTE_CODE_HEADER`, then the full declarations when
 * the whole text fits `budgetBytes`, else the compact index and a pointer to `search_tools`
 * (lines that do not fit are counted, not shown).
 */
export function renderDescription(
  tools: readonly BindingTool[],
  options: DescriptionOptions,
): string {
  if (!Number.isFinite(options.budgetBytes) || options.budgetBytes < 0) {
    throw new TypeError('renderDescription: budgetBytes must be a non-negative number')
  }
  const { fragments } = buildFragments(tools, options)
  const full = `${EXECUTE_CODE_HEADER}\n\nTool declarations:\n\`\`\`ts\n${renderDts(fragments)}\`\`\`\n`
  if (byteLength(full) <= options.budgetBytes) return full

  const head =
    `${EXECUTE_CODE_HEADER}\n\n${fragments.length} tools; their declarations do not fit here. ` +
    'Call `search_tools` with a few keywords to get the full TypeScript declarations of the tools you need. Index:\n'
  const lines = indexLines(fragments)
  let text = head
  let shown = 0
  for (const line of lines) {
    const rest = lines.length - shown - 1
    const tail = rest > 0 ? `… and ${rest} more: use search_tools.\n` : ''
    if (byteLength(`${text}${line}\n${tail}`) > options.budgetBytes) break
    text += `${line}\n`
    shown++
  }
  if (shown < lines.length) text += `… and ${lines.length - shown} more: use search_tools.\n`
  return text
}

function indexLines(fragments: readonly ToolFragment[]): string[] {
  return fragments.map((f) => {
    const args = f.argNames.length === 0 ? '' : `{ ${f.argNames.join(', ')} }`
    const summary = firstSentence(f.tool.definition.description)
    return `${f.path}(${args})${summary === '' ? '' : ` — ${summary}`}`
  })
}

function firstSentence(description: unknown): string {
  if (typeof description !== 'string') return ''
  const text = commentText(description, 2000).replace(/\s+/g, ' ').trim()
  const match = /^(.+?[.!?])(\s|$)/.exec(text)
  const sentence = match?.[1] ?? text
  return sentence.length > 160 ? `${sentence.slice(0, 159)}…` : sentence
}

function argumentText(schema: unknown): string {
  if (typeof schema !== 'object' || schema === null) return ''
  const props = (schema as { properties?: unknown }).properties
  if (typeof props !== 'object' || props === null) return ''
  return Object.entries(props)
    .map(([k, v]) => {
      const d =
        typeof v === 'object' && v !== null
          ? (v as { description?: unknown }).description
          : undefined
      return `${k} ${typeof d === 'string' ? d.slice(0, 500) : ''}`
    })
    .join(' ')
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length
}

function round(score: number): number {
  return Math.round(score * 1000) / 1000
}
