/**
 * The snippets of docs/clients.md: fenced blocks whose info string is `<lang> clients:<id>`, with
 * the doc's placeholders replaced by a live test gateway's values. Also the small runners the
 * docs test shares: a child process to its end, an SDK client over stdio or HTTP.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { expect } from 'vitest'
import { ROOT } from '../../helpers/runtime.js'
import { CODE, MAIN, names, RESULT, RESULT_TEXT, type Sluice } from './harness.js'

export const DOC = join(ROOT, 'docs', 'clients.md')

export interface Snippet {
  id: string
  lang: string
  text: string
}

export function readSnippets(): Map<string, Snippet> {
  const snippets = new Map<string, Snippet>()
  const doc = readFileSync(DOC, 'utf8')
  for (const m of doc.matchAll(/^```(\w+) clients:([\w-]+)\n([\s\S]*?)^```$/gm)) {
    const [, lang, id, text] = m as unknown as [string, string, string, string]
    if (snippets.has(id)) throw new Error(`docs/clients.md: two snippets named clients:${id}`)
    snippets.set(id, { id, lang, text })
  }
  return snippets
}

/** The doc's placeholders → this gateway. Longest first: one placeholder contains another. */
export function substitute(text: string, sluice: Sluice): string {
  return text
    .replaceAll('/path/to/sluice/dist/src/main.js', MAIN)
    .replaceAll('/path/to/sluice.yaml', sluice.configFile)
    .replaceAll('http://127.0.0.1:8787/mcp', sluice.url)
    .replaceAll('<token>', sluice.token)
}

/** The lines a code snippet says it prints: the `// → …` comment of each console.log line. */
export function expectedOutput(code: string): string[] {
  return code
    .split('\n')
    .filter((line) => line.includes('console.log('))
    .map((line) => {
      const m = /\/\/ → (.*)$/.exec(line)
      if (m === null) throw new Error(`a console.log line without "// → output": ${line}`)
      return m[1]!
    })
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to its end (no shell unless the command is one). */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Lists the tools and runs CODE; asserts the exact answers. */
async function listAndRun(client: Client): Promise<void> {
  const { tools } = await client.listTools()
  expect(names(tools)).toEqual(['execute_code', 'search_tools'])
  const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
  expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
  expect(result.structuredContent).toEqual(RESULT)
}

/** Starts a stdio server the way a client would and checks it is sluice, working. */
export async function checkStdio(server: {
  command: string
  args: string[]
  env?: Record<string, string>
  cwd?: string
}): Promise<void> {
  const client = new Client({ name: 'docs-e2e', version: '0.0.1' })
  const transport = new StdioClientTransport({ ...server, stderr: 'pipe' })
  try {
    await client.connect(transport)
    expect(client.getServerVersion()?.name).toBe('sluice')
    await listAndRun(client)
  } finally {
    await client.close()
  }
}

/** Connects over Streamable HTTP with the given headers and checks the gateway works. */
export async function checkHttp(url: string, headers: Record<string, string>): Promise<void> {
  const client = new Client({ name: 'docs-e2e', version: '0.0.1' })
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } })
  try {
    await client.connect(transport)
    expect(client.getServerVersion()?.name).toBe('sluice')
    await listAndRun(client)
  } finally {
    await client.close()
  }
}
