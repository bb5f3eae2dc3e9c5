/**
 * `sluice run` end to end: the built CLI, a config file, and the real server-memory over stdio.
 * Exit codes: 0 ok, 1 the code failed, 2 usage or config error.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT, SERVERS } from '../helpers/runtime.js'

const exec = promisify(execFile)
const CLI = join(ROOT, 'dist/src/main.js')
const dir = mkdtempSync(join(tmpdir(), 'sluice-run-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const config = join(dir, 'sluice.yaml')
writeFileSync(
  config,
  `servers:
  memory:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(SERVERS.memory)}]
    env: { MEMORY_FILE_PATH: ${JSON.stringify(join(dir, 'memory.jsonl'))} }
sandbox: { workers: 1, prewarm: 1 }
`,
)

async function sluice(
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = exec(process.execPath, [CLI, ...args], { cwd: dir, timeout: 60_000 })
  if (input !== undefined) {
    child.child.stdin?.end(input)
  }
  try {
    const { stdout, stderr } = await child
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string }
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }
  }
}

describe('sluice run', () => {
  it('creates entities in server-memory, in parallel, and reads them back', async () => {
    const file = join(dir, 'program.ts')
    writeFileSync(
      file,
      `interface Person { name: string; role: string }
const people: Person[] = [{ name: 'Ada', role: 'engineer' }, { name: 'Grace', role: 'admiral' }]
// server-memory rewrites its whole file per write, so writes go in one call; reads run in parallel.
await tools.memory.create_entities({ entities: people.map((p) => ({ name: p.name, entityType: 'person', observations: [p.role] })) })
const [graph, found, opened] = await Promise.all([
  tools.memory.read_graph({}),
  tools.memory.search_nodes({ query: 'admiral' }),
  tools.memory.open_nodes({ names: ['Ada'] }),
])
console.log('entities:', graph.entities.length)
return { names: graph.entities.map((e: { name: string }) => e.name).sort(), found: found.entities.map((e: { name: string }) => e.name), opened: opened.entities.length }
`,
    )
    const { code, stdout, stderr } = await sluice(['run', '--config', config, file])
    expect(stderr).toContain('no policies configured')
    const result = JSON.parse(stdout)
    expect(result.error).toBeUndefined()
    expect(code).toBe(0)
    expect(result.ok).toBe(true)
    expect(result.result).toEqual({ names: ['Ada', 'Grace'], found: ['Grace'], opened: 1 })
    expect(result.logs).toEqual(['entities: 2'])
    expect(result.calls.map((c: { tool: string }) => c.tool).sort()).toEqual([
      'memory.create_entities',
      'memory.open_nodes',
      'memory.read_graph',
      'memory.search_nodes',
    ])
    // The upstream really persisted them.
    expect(readFileSync(join(dir, 'memory.jsonl'), 'utf8')).toContain('Grace')
  })

  it('runs the README example against the demo config and its three real servers', async () => {
    const child = exec(
      process.execPath,
      [
        CLI,
        'run',
        '--config',
        join(ROOT, 'examples/demo/sluice.yaml'),
        join(ROOT, 'examples/scripts/memory.ts'),
      ],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: { ...process.env, SLUICE_DEMO_MEMORY_FILE: join(dir, 'demo-memory.jsonl') },
      },
    )
    const { stdout } = await child
    const result = JSON.parse(stdout)
    expect(result).toMatchObject({ ok: true, logs: ['the graph holds 2 entities'] })
    expect(result.result.topics).toEqual(['policy', 'sluice'])
    expect(result.result.files).toContain('README.md')
    expect(result.calls.every((c: { decision: string }) => c.decision === 'allow')).toBe(true)
  })

  it('reads the program from standard input with -', async () => {
    const { code, stdout } = await sluice(['run', '-'], 'const x: number = 6\nreturn x * 7')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, result: 42, logs: [], calls: [] })
  })

  it('exits 1 with a code, a message and the line when the code fails', async () => {
    const { code, stdout } = await sluice(['run', '-'], 'const a = 1\nthrow new Error("boom")')
    expect(code).toBe(1)
    expect(JSON.parse(stdout).error).toMatchObject({
      code: 'RUNTIME_ERROR',
      message: expect.stringContaining('boom'),
      line: 2,
    })
  })

  it('exits 1 on a syntax error with line and column in the model source', async () => {
    const { code, stdout } = await sluice(['run', '-'], 'const a = 1\nconst b = ;')
    expect(code).toBe(1)
    expect(JSON.parse(stdout).error).toMatchObject({ code: 'SYNTAX_ERROR', line: 2 })
  })

  it('exits 2 on a usage error and on a bad config, naming the problem', async () => {
    const none = await sluice(['run'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('expected exactly one FILE')
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'limits: { timeoutMs: -1 }\n')
    const res = await sluice(['run', '--config', bad, '-'], 'return 1')
    expect(res.code).toBe(2)
    expect(res.stderr).toContain(bad)
    expect(res.stderr).toContain('limits.timeoutMs')
    const unknown = await sluice(['run', '--nope', '-'])
    expect(unknown.code).toBe(2)
  })

  it('prints --help for every command with exit 0', async () => {
    for (const command of [
      'run',
      'serve',
      'stdio',
      'lock',
      'bindings',
      'policy',
      'audit',
      'token',
      'evidence',
      'config',
    ]) {
      const { code, stdout } = await sluice([command, '--help'])
      expect(code, command).toBe(0)
      expect(stdout, command).toContain('Usage: sluice')
    }
  })
})
