/**
 * Case `tokens`: prompt tokens an MCP client spends on tool definitions. "Direct" is the tool
 * list as a client puts it in the prompt (JSON of `name`, `description`, `inputSchema` per
 * tool); "code mode" is sluice's `execute_code` tool (its description from `renderDescription`
 * at the config default budget, 16 KiB) plus `search_tools` when the description points to it,
 * and, separately, one typical `search_tools` answer (top 5 declarations) and the whole
 * `tools/list` entries (output schemas too, which the declarations also carry as result types). Counted with
 * gpt-tokenizer's o200k_base (the GPT-4o / o-series encoding); other tokenizers differ by a
 * few percent, the ratio much less. Catalogues: the demo servers' real tool lists
 * (`test/fixtures/tools/*.json`) and a deterministic synthetic 200-tool catalogue.
 *
 * @module
 */
import fs from 'node:fs'
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base'
import { syntheticCatalogue } from '../lib/catalogue.js'
import { SkipError } from '../lib/sluice.js'

export const title = 'tokens: direct tool list vs execute_code (o200k_base)'

const BINDINGS_URL = new URL('../../dist/src/bindings/index.js', import.meta.url)
const FIXTURES = new URL('../../test/fixtures/tools/', import.meta.url)
const DEMO = ['memory', 'filesystem', 'everything']
/** `gateway.descriptionBudgetBytes` default in src/config/schema.ts. */
const BUDGET_BYTES = 16 * 1024

const EXECUTE_CODE_INPUT = {
  type: 'object',
  properties: {
    code: { type: 'string', description: 'TypeScript: the body of an async function.' },
  },
  required: ['code'],
}
const SEARCH_TOOLS = {
  name: 'search_tools',
  description: 'Search the available tools by keywords; returns their TypeScript declarations.',
  inputSchema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
}
const QUERIES = {
  memory: 'create entities',
  filesystem: 'read file',
  everything: 'add numbers',
  demo: 'read file',
  'synthetic-200': 'search tickets',
}

async function loadBindings() {
  let mod
  try {
    mod = await import(BINDINGS_URL.href)
  } catch (error) {
    throw new SkipError(
      `bindings not loadable (${error.code ?? error.message}); run \`npm run build\``,
    )
  }
  for (const name of ['renderDescription', 'createSearchIndex']) {
    if (typeof mod[name] !== 'function') throw new SkipError(`dist bindings do not export ${name}`)
  }
  return mod
}

function loadFixture(server) {
  const file = new URL(`${server}.json`, FIXTURES)
  if (!fs.existsSync(file))
    throw new SkipError(`fixture missing: test/fixtures/tools/${server}.json`)
  const tools = JSON.parse(fs.readFileSync(file, 'utf8'))
  return tools.map((definition) => ({ server, definition }))
}

/** `{ server, definition }` → the bindings' `BindingTool` (identifiers assigned as sluice does). */
function toBindingTools(bindings, entries) {
  const named = entries.map((e) => ({
    server: e.server,
    name: e.definition.name,
    definition: e.definition,
  }))
  if (typeof bindings.assignIdentifiers === 'function')
    return bindings.assignIdentifiers(named).tools
  return named.map((t) => ({ ...t, ident: t.name.replace(/[^A-Za-z0-9_$]/g, '_') }))
}

function measure(bindings, id, entries) {
  const direct = entries.map(({ definition: d }) => ({
    name: d.name,
    ...(d.description === undefined ? {} : { description: d.description }),
    inputSchema: d.inputSchema,
  }))
  const directTokens = countTokens(JSON.stringify(direct))
  // The whole `tools/list` entries, output schemas included: what the declarations also carry.
  const listTokens = countTokens(JSON.stringify(entries.map((e) => e.definition)))
  const tools = toBindingTools(bindings, entries)
  const description = bindings.renderDescription(tools, { budgetBytes: BUDGET_BYTES })
  const usesSearch = description.includes('search_tools')
  const outer = [{ name: 'execute_code', description, inputSchema: EXECUTE_CODE_INPUT }]
  if (usesSearch) outer.push(SEARCH_TOOLS)
  const codeTokens = countTokens(JSON.stringify(outer))
  const hits = bindings.createSearchIndex(tools).search(QUERIES[id], 5)
  const searchTokens = countTokens(
    JSON.stringify(
      hits.map((h) => ({ tool: `${h.server}.${h.name}`, declaration: h.declaration })),
    ),
  )
  return {
    id,
    tools: entries.length,
    directTokens,
    listTokens,
    codeTokens,
    ratio: codeTokens / directTokens,
    descriptionBytes: Buffer.byteLength(description),
    form: usesSearch ? 'index + search_tools' : 'full declarations',
    searchQuery: QUERIES[id],
    searchTokens,
  }
}

export async function run() {
  const bindings = await loadBindings()
  const catalogues = []
  const skipped = []
  const demo = []
  for (const server of DEMO) {
    try {
      const entries = loadFixture(server)
      demo.push(...entries)
      catalogues.push([server, entries])
    } catch (error) {
      skipped.push(String(error.message))
    }
  }
  if (demo.length > 0 && skipped.length === 0) catalogues.push(['demo', demo])
  catalogues.push(['synthetic-200', syntheticCatalogue()])
  const rows = catalogues.map(([id, entries]) => measure(bindings, id, entries))
  const metrics = rows.map((r) => ({
    label: `${r.id} (${r.tools} tools)`,
    value:
      `direct ${r.directTokens} → execute_code ${r.codeTokens} tokens, ${r.ratio.toFixed(2)}× (${r.form}); ` +
      `whole tools/list incl. output schemas ${r.listTokens}; one search_tools answer ${r.searchTokens}`,
  }))
  for (const s of skipped) metrics.push({ label: 'fixture', skipped: s })
  return { metrics, details: { encoding: 'o200k_base', budgetBytes: BUDGET_BYTES, rows } }
}
