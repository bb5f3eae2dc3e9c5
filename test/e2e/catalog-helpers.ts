/**
 * Helpers of the catalogue e2e tests: a synthetic MCP server (written to a temp dir at test time)
 * with any number of tools and raw JSON Schemas, including `additionalProperties: false`, and
 * small polling and audit readers.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/runtime.js'

const SDK = join(ROOT, 'node_modules/@modelcontextprotocol/sdk/dist/esm')

/** Domains and verbs of the synthetic catalogue: 10 × 10 names per hundred tools. */
export const SYNTHETIC_DOMAINS = [
  'invoice',
  'customer',
  'ticket',
  'shipment',
  'payment',
  'report',
  'user',
  'order',
  'product',
  'warehouse',
]
export const SYNTHETIC_VERBS = [
  'get',
  'list',
  'create',
  'update',
  'delete',
  'search',
  'archive',
  'export',
  'import',
  'sync',
]

// The server imports the SDK by absolute path: it runs from a temp dir with no node_modules.
const SERVER_SOURCE = `// Synthetic MCP server for sluice tests: $TOOL_COUNT generated tools plus strict_echo.
const { Server } = await import(process.env.SDK_SERVER)
const { StdioServerTransport } = await import(process.env.SDK_STDIO)
const { CallToolRequestSchema, ListToolsRequestSchema } = await import(process.env.SDK_TYPES)
const domains = ${JSON.stringify(SYNTHETIC_DOMAINS)}
const verbs = ${JSON.stringify(SYNTHETIC_VERBS)}
const count = Number(process.env.TOOL_COUNT ?? 200)
const tools = []
for (let i = 0; i < count; i++) {
  const verb = verbs[i % 10]
  const domain = domains[Math.floor(i / 10) % 10]
  tools.push({
    name: verb + '_' + domain + '_' + Math.floor(i / 100),
    description: 'The ' + verb + ' operation on ' + domain + ' records, batch ' + Math.floor(i / 100) + '. Returns the affected ' + domain + '.',
    inputSchema: {
      type: 'object',
      properties: { id: { type: 'string', description: 'The ' + domain + ' id' }, limit: { type: 'integer', minimum: 1, maximum: 100 } },
      required: ['id'],
    },
    outputSchema: { type: 'object', properties: { id: { type: 'string' }, status: { enum: ['ok', 'missing'] } }, required: ['id', 'status'] },
    annotations: { readOnlyHint: verb === 'get' || verb === 'list' || verb === 'search' },
  })
}
tools.push({
  name: 'strict_echo',
  description: 'Echo a message; no other argument is accepted.',
  inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'], additionalProperties: false },
  outputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'], additionalProperties: false },
})
const server = new Server({ name: 'fixture-synthetic', version: '1.0.0' }, { capabilities: { tools: {} } })
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }))
server.setRequestHandler(CallToolRequestSchema, async (request) => {
  const args = request.params.arguments ?? {}
  const value = request.params.name === 'strict_echo' ? { message: String(args.message) } : { id: String(args.id), status: 'ok' }
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value }
})
await server.connect(new StdioServerTransport())
`

/** Writes the synthetic server into `dir` and returns a stdio server entry running it. */
export function syntheticServer(
  dir: string,
  toolCount: number,
): { command: string; args: string[]; env: Record<string, string> } {
  const file = join(dir, 'synthetic-server.mjs')
  writeFileSync(file, SERVER_SOURCE)
  return {
    command: process.execPath,
    args: [file],
    env: {
      TOOL_COUNT: String(toolCount),
      SDK_SERVER: join(SDK, 'server/index.js'),
      SDK_STDIO: join(SDK, 'server/stdio.js'),
      SDK_TYPES: join(SDK, 'types.js'),
    },
  }
}

/** Polls `check` until it returns true, or throws after `timeoutMs`. */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The records of a JSONL audit file (empty when it does not exist yet). */
export function auditRecords(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}
