/**
 * `search_tools`: a BM25 search over tool names and descriptions, and the fitting of its hits
 * into a byte budget (full declarations while they fit, then compact ones, then names).
 *
 * @module
 */
import type { BindingTool } from './model.js'
import type { DeclarationOptions, ToolFragment } from './declarations.js'
import { buildFragments, renderCompactSnippet, renderToolSnippet } from './declarations.js'

/** One hit of `search`. `declaration` is TypeScript the model can read and call from. */
export interface SearchHit {
  server: string
  name: string
  ident: string
  score: number
  /** The full declaration: JSDoc, call signature, named input and output types. */
  declaration: string
  /** The compact one (`renderCompactSnippet`): first sentence and a one-line signature. */
  compact: string
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
  readonly compact: string
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
    return {
      fragment: f,
      tf,
      length,
      snippet: renderToolSnippet(f),
      compact: renderCompactSnippet(f),
    }
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
            compact: d.compact,
          })
        }
      }
      hits.sort((a, b) => b.score - a.score || (a.server + a.ident < b.server + b.ident ? -1 : 1))
      return hits.slice(0, n)
    },
  }
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

function round(score: number): number {
  return Math.round(score * 1000) / 1000
}

/** A search answer cut to a byte budget. */
export interface FittedSearch {
  /** Hits shown with a declaration: full while they fit, then compact. */
  readonly shown: ReadonlyArray<SearchHit & { readonly form: 'full' | 'compact' }>
  /** `tools.<server>.<tool>` paths of further hits that did not fit: named, not declared. */
  readonly more: readonly string[]
}

/**
 * Fits ranked hits into `budgetBytes` of declarations: each hit gets its full declaration if
 * it still fits, else its compact one, else only its path in `more` (and every hit after the
 * first that did not fit goes there too, so ranks stay in order). The first hit always gets at
 * least its compact form, however large: an answer that declares nothing is useless.
 */
export function fitSearchHits(hits: readonly SearchHit[], budgetBytes: number): FittedSearch {
  const shown: Array<SearchHit & { form: 'full' | 'compact' }> = []
  const more: string[] = []
  let used = 0
  for (const hit of hits) {
    const path = `tools.${hit.server}.${hit.ident}`
    if (more.length > 0) {
      more.push(path)
      continue
    }
    const full = byteLength(hit.declaration)
    const compact = byteLength(hit.compact)
    if (used + full <= budgetBytes) {
      shown.push({ ...hit, form: 'full' })
      used += full
    } else if (used + compact <= budgetBytes || shown.length === 0) {
      shown.push({ ...hit, declaration: hit.compact, form: 'compact' })
      used += compact
    } else more.push(path)
  }
  return { shown, more }
}

/** UTF-8 length. */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).length
}
