/**
 * The MCP Inspector's CLI mode, `@modelcontextprotocol/inspector-cli` 1.0.3: the same `cli.js`
 * that `npx @modelcontextprotocol/inspector --cli` (1.0.3) runs, without the web UI's weight (and
 * the full package wants Node ≥ 22.7.5). It prints each answer as JSON on stdout.
 *
 * Two quirks of 1.0.3, both needed here as a user would need them:
 * - it imports `../package.json` relative to the working folder's check, so it runs from a folder
 *   whose parent has a package.json (`test/`, as the README says);
 * - its launcher owns `--config` (a client config file), so sluice's own `--config` goes after
 *   `--`, with the server command; and `--tool-arg` is variadic, so another option follows it.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../helpers/runtime.js'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'

const CLI = join(ROOT, 'node_modules/@modelcontextprotocol/inspector-cli/build/cli.js')

let sluice: Sluice
beforeAll(async () => {
  sluice = await startSluice()
})
afterAll(async () => {
  await sluice?.close()
})

/** Runs the inspector CLI to its end; its stdout is one JSON document. */
function inspector(args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--cli', ...args], {
      cwd: join(ROOT, 'test'),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    child.once('error', reject)
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`inspector exited ${String(code)}:\n${stderr}`))
      try {
        resolve(JSON.parse(stdout))
      } catch {
        reject(new Error(`inspector printed no JSON:\n${stdout}\n${stderr}`))
      }
    })
  })
}

const LIST = ['--method', 'tools/list']
// `--tool-arg` takes every word up to the next option, so it must not be the last option before
// the server command.
const CALL = ['--tool-arg', `code=${CODE}`, '--tool-name', 'execute_code', '--method', 'tools/call']

describe('@modelcontextprotocol/inspector-cli --cli', () => {
  it('sluice serve over Streamable HTTP with a bearer header: tools/list, tools/call execute_code', async () => {
    const target = [
      sluice.url,
      '--transport',
      'http',
      '--header',
      `Authorization: Bearer ${sluice.token}`,
    ]
    const list = (await inspector([...target, ...LIST])) as { tools: Array<{ name: string }> }
    expect(names(list.tools)).toEqual(['execute_code', 'search_tools'])
    expect(await inspector([...target, ...CALL])).toEqual({
      content: [{ type: 'text', text: RESULT_TEXT }],
      structuredContent: RESULT,
    })
  })

  it('sluice stdio as the server command: tools/list, tools/call execute_code', async () => {
    const server = ['--', sluice.stdio.command, ...sluice.stdio.args]
    const list = (await inspector([...LIST, ...server])) as { tools: Array<{ name: string }> }
    expect(names(list.tools)).toEqual(['execute_code', 'search_tools'])
    expect(await inspector([...CALL, ...server])).toEqual({
      content: [{ type: 'text', text: RESULT_TEXT }],
      structuredContent: RESULT,
    })
  })
})
