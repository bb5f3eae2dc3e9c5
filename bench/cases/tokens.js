/**
 * Case `tokens`: prompt tokens a model reads before its first useful call. "Direct" is the tool
 * list as a client puts it in the prompt (JSON of `name`, `description`, `inputSchema` per
 * tool). "Footprint" is what sluice lists instead: `execute_code` and `search_tools` with their
 * real descriptions and input schemas (from dist: src/gateway/render.ts and the description of
 * src/bindings/describe.ts at the config defaults), plus, when the tools are not declared inline
 * (`index`/`summary` forms), one `search_tools` answer: the text block the gateway returns for a
 * typical query at the default `limit`. Counted with gpt-tokenizer's o200k_base (the GPT-4o /
 * o-series encoding); other tokenizers differ by a few percent. Goals (issue 13): footprint
 * ≤ 1,000 tokens for any catalogue, and no more than the direct list for one real server.
 *
 * Catalogues: the demo servers' real tool lists (`test/fixtures/tools/*.json`), and a
 * deterministic synthetic catalogue (`lib/catalogue.js`) at 1, 3, 200 and 2,000 tools.
 *
 * @module
 */
import fs from 'node:fs'
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base'
import { syntheticCatalogue } from '../lib/catalogue.js'
import { SkipError } from '../lib/sluice.js'

export const title = 'tokens: direct tool list vs what code mode makes the model read (o200k_base)'

const DIST = new URL('../../dist/src/', import.meta.url)
const FIXTURES = new URL('../../test/fixtures/tools/', import.meta.url)
const DEMO = ['memory', 'filesystem', 'everything']
const FOOTPRINT_GOAL_TOKENS = 1000

/** One query per catalogue, what a model would search for first. */
const QUERIES = {
  memory: 'create entities',
  filesystem: 'read file',
  everything: 'add numbers',
  demo: 'read file',
}
const SYNTHETIC_QUERY = 'search tickets'

async function importDist(path, names) {
  let mod
  try {
    mod = await import(new URL(path, DIST).href)
  } catch (error) {
    throw new SkipError(
      `${path} not loadable (${error.code ?? error.message}); run \`npm run build\``,
    )
  }
  for (const name of names) {
    if (mod[name] === undefined) throw new SkipError(`dist ${path} does not export ${name}`)
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

function measure(parts, id, entries, query) {
  const { bindings, render, gateway } = parts
  const direct = entries.map(({ definition: d }) => ({
    name: d.name,
    ...(d.description === undefined ? {} : { description: d.description }),
    inputSchema: d.inputSchema,
  }))
  const directTokens = countTokens(JSON.stringify(direct))
  const named = entries.map((e) => ({
    server: e.server,
    name: e.definition.name,
    definition: e.definition,
  }))
  const tools = bindings.assignIdentifiers(named).tools
  const { text, form } = bindings.describeTools(tools, {
    budgetBytes: gateway.descriptionBudgetBytes,
    searchBytes: gateway.searchBudgetBytes,
  })
  const outer = [
    { name: 'execute_code', description: text, inputSchema: render.executeCodeInputSchema },
    {
      name: 'search_tools',
      description: render.SEARCH_TOOLS_DESCRIPTION,
      inputSchema: render.searchToolsInputSchema,
    },
  ]
  const outerTokens = countTokens(JSON.stringify(outer))
  // What the engine and gateway return for search_tools (engine.searchTools + toSearchResult).
  const hits = bindings.createSearchIndex(tools).search(query, render.DEFAULT_SEARCH_LIMIT)
  const { shown, more } = bindings.fitSearchHits(hits, gateway.searchBudgetBytes)
  const answer = render.toSearchResult({
    matches: shown.map((h) => ({
      tool: `${h.server}.${h.name}`,
      declaration: h.declaration,
      score: h.score,
    })),
    more: [...more],
  }).content[0].text
  const searchTokens = countTokens(answer)
  const inline = form === 'full' || form === 'compact'
  const footprintTokens = outerTokens + (inline ? 0 : searchTokens)
  return {
    id,
    tools: entries.length,
    directTokens,
    form,
    descriptionBytes: Buffer.byteLength(text),
    outerTokens,
    searchQuery: query,
    searchTokens,
    searchShown: shown.length,
    footprintTokens,
    ratio: footprintTokens / directTokens,
    withinGoal: footprintTokens <= FOOTPRINT_GOAL_TOKENS,
  }
}

export async function run() {
  const bindings = await importDist('bindings/index.js', [
    'assignIdentifiers',
    'describeTools',
    'createSearchIndex',
    'fitSearchHits',
  ])
  const render = await importDist('gateway/render.js', [
    'executeCodeInputSchema',
    'searchToolsInputSchema',
    'SEARCH_TOOLS_DESCRIPTION',
    'DEFAULT_SEARCH_LIMIT',
    'toSearchResult',
  ])
  const { gatewaySchema } = await importDist('config/schema.js', ['gatewaySchema'])
  const gateway = gatewaySchema.parse({})
  const parts = { bindings, render, gateway }

  const catalogues = []
  const skipped = []
  const demo = []
  for (const server of DEMO) {
    try {
      const entries = loadFixture(server)
      demo.push(...entries)
      catalogues.push([server, entries, QUERIES[server]])
    } catch (error) {
      skipped.push(String(error.message))
    }
  }
  if (demo.length > 0 && skipped.length === 0) catalogues.push(['demo', demo, QUERIES.demo])
  const synthetic = (servers, toolsPerServer) => syntheticCatalogue({ servers, toolsPerServer })
  catalogues.push(['synthetic-1', synthetic(1, 1), SYNTHETIC_QUERY])
  catalogues.push(['synthetic-3', synthetic(1, 3), SYNTHETIC_QUERY])
  catalogues.push(['synthetic-200', synthetic(10, 20), SYNTHETIC_QUERY])
  catalogues.push(['synthetic-2000', synthetic(100, 20), SYNTHETIC_QUERY])
  const rows = catalogues.map(([id, entries, query]) => measure(parts, id, entries, query))
  const metrics = rows.map((r) => ({
    label: `${r.id} (${r.tools} tools)`,
    value:
      `direct ${r.directTokens} → footprint ${r.footprintTokens} tokens, ${r.ratio.toFixed(2)}× ` +
      `(${r.form}: outer tools ${r.outerTokens}` +
      `${r.form === 'full' || r.form === 'compact' ? '' : ` + one search_tools answer ${r.searchTokens}`}); ` +
      `${r.withinGoal ? 'within' : 'OVER'} the ${FOOTPRINT_GOAL_TOKENS}-token goal`,
  }))
  for (const s of skipped) metrics.push({ label: 'fixture', skipped: s })
  return {
    metrics,
    details: {
      encoding: 'o200k_base',
      descriptionBudgetBytes: gateway.descriptionBudgetBytes,
      searchBudgetBytes: gateway.searchBudgetBytes,
      goalTokens: FOOTPRINT_GOAL_TOKENS,
      rows,
    },
  }
}
