/**
 * The `execute_code` description: the contract in a few lines, then the tools in the richest
 * form that fits. Forms, richest first:
 *
 * - `full`: the declarations with JSDoc and named types, as `sluice bindings` writes them;
 * - `compact`: one line per tool, types inline, the first sentence of its description;
 * - `index`: one line per tool with argument names only, and a pointer to `search_tools`;
 * - `summary`: each server's tool names, as many as fit, and a pointer to `search_tools`.
 *
 * What the model reads before its first useful call is the description, plus one `search_tools`
 * answer when the tools are not declared inline. Both fit `budgetBytes`: `index` and `summary`
 * leave `searchBytes` of it for that answer. `full` is also held to the size of the direct tool
 * list, so code mode never costs more than listing the tools would have.
 *
 * @module
 */
import type { BindingTool } from './model.js'
import type { DeclarationOptions, ToolFragment } from './declarations.js'
import { buildFragments, renderCompactDts, renderDts } from './declarations.js'
import { byteLength } from './search.js'

/** The contract the model writes against; the head of every `execute_code` description. */
export const EXECUTE_CODE_HEADER = [
  'Run TypeScript, the body of an async function, that calls `await tools.<server>.<tool>(args)`.',
  '- `return` a JSON value (or end with an expression); run independent calls in `Promise.all`.',
  '- A failed call throws an Error with `.code` (TOOL_ERROR, TOOL_DENIED, INVALID_ARGS…).',
  '- console.log goes to `logs`. No fetch, require, timers, filesystem or network.',
].join('\n')

/**
 * Bytes of what a client lists besides this description: the `execute_code` name, title and
 * input schema and the whole `search_tools` tool (src/gateway/render.ts; a gateway test holds
 * this at or above their real size). Counted against the direct list with the description.
 */
export const OUTER_TOOLS_OVERHEAD_BYTES = 720

/** How the description shows the tools. */
export type DescriptionForm = 'full' | 'compact' | 'index' | 'summary'

/** Options of `renderDescription`. */
export interface DescriptionOptions extends DeclarationOptions {
  /** Largest footprint, in UTF-8 bytes: the description, plus one search answer for `index`/`summary`. */
  readonly budgetBytes: number
  /** Bytes of `budgetBytes` kept for one `search_tools` answer by the `index` and `summary` forms. Default 0. */
  readonly searchBytes?: number
}

/** A rendered description and the form it took. */
export interface Description {
  readonly text: string
  readonly form: DescriptionForm
}

/** The `execute_code` description text (see `describeTools`). */
export function renderDescription(
  tools: readonly BindingTool[],
  options: DescriptionOptions,
): string {
  return describeTools(tools, options).text
}

/**
 * Picks the richest form that fits: `full` when it fits `budgetBytes` and, with the outer tools,
 * no more than the direct tool list; else `compact` when it fits `budgetBytes`; else `index`
 * when every line fits `budgetBytes - searchBytes`; else `summary`, cut to that size.
 */
export function describeTools(
  tools: readonly BindingTool[],
  options: DescriptionOptions,
): Description {
  const budget = options.budgetBytes
  const searchBytes = options.searchBytes ?? 0
  if (!Number.isFinite(budget) || budget < 0) {
    throw new TypeError('renderDescription: budgetBytes must be a non-negative number')
  }
  if (!Number.isFinite(searchBytes) || searchBytes < 0) {
    throw new TypeError('renderDescription: searchBytes must be a non-negative number')
  }
  const { fragments } = buildFragments(tools, options)
  const declared = (dts: string, title: string): string =>
    `${EXECUTE_CODE_HEADER}\n\n${title}:\n\`\`\`ts\n${dts}\`\`\`\n`

  const full = declared(renderDts(fragments), 'Tool declarations')
  const fullBytes = byteLength(full)
  if (fullBytes <= budget && fullBytes + OUTER_TOOLS_OVERHEAD_BYTES <= directListBytes(fragments))
    return { text: full, form: 'full' }
  const compact = declared(
    renderCompactDts(fragments),
    'Tool declarations (`search_tools` gives one with its docs)',
  )
  if (byteLength(compact) <= budget) return { text: compact, form: 'compact' }

  const room = Math.max(0, budget - searchBytes)
  const search =
    'Call `search_tools` with a few keywords to get the TypeScript declarations of the tools you need.'
  const index = `${EXECUTE_CODE_HEADER}\n\n${fragments.length} tools. ${search} Index:\n${indexLines(fragments).join('\n')}\n`
  if (byteLength(index) <= room) return { text: index, form: 'index' }
  return {
    text: summary(fragments, `${EXECUTE_CODE_HEADER}\n\n${search}\n`, room),
    form: 'summary',
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

function indexLines(fragments: readonly ToolFragment[]): string[] {
  return fragments.map((f) => {
    const args = f.argNames.length === 0 ? '' : `{ ${f.argNames.join(', ')} }`
    const text = f.compact.summary
    return `${f.path}(${args})${text === '' ? '' : ` — ${text}`}`
  })
}

/**
 * `tools.memory (9): add_observations, create_entities, …` per server, servers in order, names
 * in order, until `room` bytes; what is cut is counted, never silently dropped.
 */
function summary(fragments: readonly ToolFragment[], head: string, room: number): string {
  const byServer = new Map<string, string[]>()
  for (const f of fragments)
    byServer.set(f.serverIdent, [...(byServer.get(f.serverIdent) ?? []), f.tool.ident])
  let text = `${head}${fragments.length} tools on ${byServer.size} server${byServer.size === 1 ? '' : 's'}:\n`
  let serversShown = 0
  for (const [server, idents] of byServer) {
    const tail = (restServers: number): string =>
      restServers > 0 ? `… and ${restServers} more server${restServers === 1 ? '' : 's'}.\n` : ''
    const left = byServer.size - serversShown - 1
    let line = `tools.${server} (${idents.length}):`
    let shown = 0
    for (const ident of idents) {
      const next = `${line}${shown === 0 ? ' ' : ', '}${ident}`
      const rest = idents.length - shown - 1
      const end = rest > 0 ? `, … ${rest} more` : ''
      if (byteLength(`${text}${next}${end}\n${tail(left)}`) > room) break
      line = next
      shown++
    }
    if (shown === 0) break
    if (shown < idents.length) line += `, … ${idents.length - shown} more`
    text += `${line}\n`
    serversShown++
  }
  const rest = byServer.size - serversShown
  if (rest > 0) text += `… and ${rest} more server${rest === 1 ? '' : 's'}.\n`
  return text
}

/** Bytes of the tool list a client would show without sluice: name, description, inputSchema. */
function directListBytes(fragments: readonly ToolFragment[]): number {
  const list = fragments.map(({ tool: { name, definition: d } }) => ({
    name,
    ...(d.description === undefined ? {} : { description: d.description }),
    inputSchema: d.inputSchema,
  }))
  return byteLength(JSON.stringify(list))
}
