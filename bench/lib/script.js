/**
 * The one script every engine runs (sluice and each peer), its tool manifest, the canned tool
 * answers, and the guest glue the peers need to offer the same `tools.<server>.<tool>()` API.
 * Keeping these in one place is what makes "same script, same run" comparisons honest.
 *
 * @module
 */
import { createRequire } from 'node:module'
import { isDeepStrictEqual } from 'node:util'

// sucrase is a dependency of the product itself; peers use the same transpiler sluice uses so
// every engine pays for the same work (transpile + run), not just the run.
const requireFromRoot = createRequire(new URL('../../package.json', import.meta.url))
/** Loaded on first use: the cold-start child imports this file and must not pay for the peers' sucrase. */
let transform

/**
 * Model-style TypeScript, the body of an async function: an interface, a generic helper,
 * `Promise.all` of two calls, then one more awaited call, a log line and a result.
 */
export const SCRIPT = `interface Entity {
  name: string
  entityType: string
  observations: string[]
}
type Graph = { entities: Entity[] }
type Summary = { total: number; names: string[]; types: Record<string, number> }

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1
  return out
}

const [people, places] = await Promise.all([
  tools.memory.search_nodes({ query: 'person' }) as Promise<Graph>,
  tools.memory.search_nodes({ query: 'place' }) as Promise<Graph>,
])
const detail = (await tools.memory.open_nodes({ names: ['alice'] })) as Graph
const all: Entity[] = [...people.entities, ...places.entities, ...detail.entities]
const summary = {
  total: all.length,
  names: all.map((e) => e.name).sort(),
  types: countBy(all, (e) => e.entityType),
} satisfies Summary
console.log(\`found \${summary.total} entities\`)
return summary
`

/** Lines of the script, for the report. */
export const SCRIPT_LINES = SCRIPT.trimEnd().split('\n').length

/** Server → guest identifier → upstream tool name, as sluice's sandbox takes it. */
export const MANIFEST = Object.freeze({
  memory: Object.freeze({ search_nodes: 'search_nodes', open_nodes: 'open_nodes' }),
})

const ENTITIES = {
  person: [
    { name: 'alice', entityType: 'person', observations: ['likes tea'] },
    { name: 'bob', entityType: 'person', observations: ['likes coffee', 'runs'] },
  ],
  place: [{ name: 'paris', entityType: 'place', observations: ['capital'] }],
}

/** The in-process tool: answers at once, deterministically. */
export function answer(server, tool, args) {
  if (server === 'memory' && tool === 'search_nodes') {
    return { entities: ENTITIES[args?.query] ?? [] }
  }
  if (server === 'memory' && tool === 'open_nodes') {
    return { entities: ENTITIES.person.filter((e) => args?.names?.includes(e.name)) }
  }
  if (server === 'bench' && tool === 'noop') return { ok: true }
  if (server === 'bench' && tool === 'wait') return { waited: args?.ms ?? 0 }
  throw new Error(`unknown tool ${server}.${tool}`)
}

/** What every engine must return for `SCRIPT`; checked once per engine before timing. */
export const EXPECTED = Object.freeze({
  total: 4,
  names: ['alice', 'alice', 'bob', 'paris'],
  types: { person: 3, place: 1 },
})

/** Whether an engine's result is the expected one (engines may return null-prototype objects). */
export function isExpected(value) {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(value ?? null)), EXPECTED)
}

/** sucrase, exactly as a host would call it before handing JS to an engine. */
export function transpile(ts) {
  transform ??= requireFromRoot('sucrase').transform
  return transform(ts, { transforms: ['typescript'], disableESTransforms: true }).code
}

/**
 * A JS expression, for a peer engine, that evaluates to a Promise of the script's result as a
 * JSON string. `callExpr` is an expression of a function `(server, tool, argsJson) => Promise<string>`
 * and `logExpr` one of `(line: string) => void`, both provided by the peer's host glue.
 */
export function guestProgram(js, callExpr, logExpr) {
  return `(async () => {
  const __call = ${callExpr}
  const __log = ${logExpr}
  const __manifest = ${JSON.stringify(MANIFEST)}
  const tools = {}
  for (const server of Object.keys(__manifest)) {
    const ns = {}
    for (const ident of Object.keys(__manifest[server])) {
      const name = __manifest[server][ident]
      ns[ident] = async (args) => JSON.parse(await __call(server, name, JSON.stringify(args ?? {})))
    }
    tools[server] = Object.freeze(ns)
  }
  const console = { log: (...a) => __log(a.map(String).join(' ')) }
  const __result = await (async () => {
${js}
  })()
  return JSON.stringify(__result)
})()`
}
