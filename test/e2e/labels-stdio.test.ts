/**
 * Data labels through the built CLI: `sluice stdio --config examples/labels/sluice.yaml` (the
 * README's example: server-memory labelled `confidential`, server-everything's `echo` labelled
 * `egress`) driven by the SDK's stdio client. Reading the graph, then echoing, is TOOL_DENIED
 * with the rule and the labels; echo alone, in a fresh execution, runs. A `tools:` key that
 * names no tool stops `sluice stdio` with a did-you-mean; a policy label the config does not
 * declare stops `sluice config check`.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/runtime.js'

const CLI = join(ROOT, 'dist/src/main.js')
const EXAMPLE = join(ROOT, 'examples/labels/sluice.yaml')
const dir = mkdtempSync(join(tmpdir(), 'sluice-labels-stdio-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const env = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '',
  // The example keeps memory's file next to the demo; tests never write under examples/.
  SLUICE_LABELS_MEMORY_FILE: join(dir, 'memory.jsonl'),
})

interface Outcome {
  ok: boolean
  result?: unknown
  error?: { code: string; message: string }
  calls: { tool: string; decision: string }[]
}

describe('sluice stdio with the labels example', () => {
  let client: Client
  beforeAll(async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true)
    client = new Client({ name: 'labels-stdio', version: '0.0.1' }, { capabilities: {} })
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'stdio', '--config', EXAMPLE],
        env: env(),
        stderr: 'pipe',
      }),
    )
  })
  afterAll(() => client?.close())

  const execute = async (code: string): Promise<Outcome> =>
    (await client.callTool({ name: 'execute_code', arguments: { code } }))
      .structuredContent as Outcome

  it('denies echo after read_graph, naming the rule and the labels', async () => {
    const out = await execute(
      `await tools.memory.read_graph({})\nreturn await tools.everything.echo({ message: 'the graph' })`,
    )
    expect(out.ok).toBe(false)
    expect(out.error).toMatchObject({
      code: 'TOOL_DENIED',
      message:
        'everything.echo is not allowed: rule no-egress-after-confidential (tool labels: egress; execution labels: confidential)',
    })
    expect(out.calls.map((c) => [c.tool, c.decision])).toEqual([
      ['memory.read_graph', 'allow'],
      ['everything.echo', 'deny'],
    ])
  })

  it('denies it in Promise.all too, and runs echo alone in the next execution', async () => {
    const both = await execute(
      `return await Promise.all([tools.memory.read_graph({}), tools.everything.echo({ message: 'x' })])`,
    )
    expect(both.error?.code).toBe('TOOL_DENIED')
    const alone = await execute(`return await tools.everything.echo({ message: 'hello' })`)
    expect(alone).toMatchObject({ ok: true, result: 'Echo: hello' })
  })

  it('describes echo to the model: listing does not hide egress tools', async () => {
    const { tools } = await client.listTools()
    const description = tools.find((t) => t.name === 'execute_code')?.description ?? ''
    expect(description).toContain('echo')
    expect(description).toContain('read_graph')
  })
})

describe('labels config errors through the CLI', () => {
  /** The example with `edit` applied to its text, written into the temp folder. */
  function exampleWith(name: string, edit: (text: string) => string): string {
    const text = readFileSync(EXAMPLE, 'utf8')
      .replaceAll('${SLUICE_CONFIG_DIR}/../..', ROOT)
      .replace('../../policies/labels.yaml', join(ROOT, 'policies/labels.yaml'))
    const file = join(dir, name)
    writeFileSync(file, edit(text))
    return file
  }

  it('stops sluice stdio on a tools: key that names no tool, with a did-you-mean', () => {
    const file = exampleWith('typo-tool.yaml', (t) => t.replace('echo: { labels', 'ecko: { labels'))
    const r = spawnSync(process.execPath, [CLI, 'stdio', '--config', file], {
      env: env(),
      encoding: 'utf8',
      input: '',
      timeout: 60_000,
    })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(
      `invalid config ${file}: servers.everything.tools.ecko: server everything has no tool "ecko" (did you mean "echo"?)`,
    )
  })

  it('stops sluice config check on a policy label the config never declares', () => {
    const policy = join(dir, 'typo-policy.yaml')
    writeFileSync(
      policy,
      `rules:\n  - id: no-egress\n    effect: deny\n    when: '"egress" in tool.labels && "confidentail" in execution.labels'\n`,
    )
    const file = exampleWith('typo-label.yaml', (t) =>
      t.replace(join(ROOT, 'policies/labels.yaml'), policy),
    )
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], {
      env: env(),
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(`invalid policy ${policy}:`)
    expect(r.stderr).toContain(
      `rules[0].when (id "no-egress"): label "confidentail" (execution.labels, line 1, column 28) is not declared in ${file} (did you mean "confidential"?)`,
    )
  })
})
