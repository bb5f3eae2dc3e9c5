/**
 * The README's result example ("The result contract") is what sluice answers, byte for byte but
 * the timing: a tool that exists but policy hides from the caller is TOOL_DENIED, with a message
 * that says so and nothing of the tool's definition. Real engine, real server-filesystem.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toCallToolResult } from '../../src/gateway/index.js'
import { ROOT, SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'

const POLICY = `
rules:
  - id: filesystem-read
    effect: allow
    when: tool.server == "filesystem" && tool.annotations.readOnlyHint == true
`
/** The code behind the example: line 3 calls a tool this caller cannot see. */
const CODE = [
  "console.warn('retrying')",
  "const note = 'remember the milk'",
  "await tools.filesystem.write_file({ path: 'notes/todo.txt', content: note })",
].join('\n')

/** The first JSON block after the README's "## The result contract". */
function readmeExample(): Record<string, unknown> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## The result contract'))
  const block = /```json\n([\s\S]*?)\n```/.exec(section)?.[1]
  if (block === undefined) throw new Error('README: no JSON block under "The result contract"')
  return JSON.parse(block) as Record<string, unknown>
}

let rt: TestRuntime
let dir: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-readme-'))
  mkdirSync(join(dir, 'notes'))
  rt = await testRuntime({
    policy: POLICY,
    config: {
      servers: { filesystem: { command: process.execPath, args: [SERVERS.filesystem, dir] } },
    },
  })
})
afterAll(async () => {
  await rt?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('the README result example', () => {
  it('is what execute_code answers for a tool policy hides from the caller', async () => {
    const result = await rt.engine.execute(rt.principal(), CODE)
    const structured = toCallToolResult(result).structuredContent as Record<string, unknown>
    const example = readmeExample()
    const calls = example.calls as Array<Record<string, unknown>>
    // Only the timing differs from run to run.
    expect(structured).toEqual({
      ...example,
      calls: calls.map((c) => ({ ...c, ms: expect.any(Number) })),
    })
    expect(JSON.stringify(structured)).not.toMatch(/content|Create a new file|"path"/)
  })
})
