/**
 * Dumps the real `tools/list` of the demo MCP servers into test/fixtures/tools/*.json, so the
 * bindings tests run against what the servers actually publish. Run once, commit the JSON:
 * `npx tsx scripts/dump-tools.ts`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'

const root = resolve(import.meta.dirname, '..')
const bin = (name: string): string => join(root, 'node_modules', '.bin', name)

async function dump(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<void> {
  const transport = new StdioClientTransport({
    command,
    args,
    env: { ...(process.env as Record<string, string>), ...env },
    stderr: 'ignore',
  })
  const client = new Client({ name: 'sluice-dump-tools', version: '0.0.0' })
  try {
    await client.connect(transport)
    const tools = []
    let cursor: string | undefined
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor })
      tools.push(...page.tools)
      cursor = page.nextCursor
    } while (cursor !== undefined)
    writeFileSync(
      join(root, 'test', 'fixtures', 'tools', `${name}.json`),
      JSON.stringify(tools, null, 2) + '\n',
    )
    console.log(`${name}: ${tools.length} tools`)
  } finally {
    await client.close()
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-dump-'))
try {
  await dump('memory', bin('mcp-server-memory'), [], {
    MEMORY_FILE_PATH: join(dir, 'memory.jsonl'),
  })
  await dump('filesystem', bin('mcp-server-filesystem'), [dir], {})
  await dump('everything', bin('mcp-server-everything'), ['stdio'], {})
} finally {
  rmSync(dir, { recursive: true, force: true })
}
