/**
 * A `sluice run` process killed mid-run (SIGKILL while a slow inner call is pending) leaves an
 * audit file that verifies up to its last complete record: the decision for the pending call is
 * already on disk (write-ahead), nothing after it. A torn last line (a crash mid-write) is
 * reported as such and still verifies; the next run recovers the chain and appends after it.
 */
import { execFile, spawn } from 'node:child_process'
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES, ROOT } from '../helpers/runtime.js'
import { readAudit } from './helpers.js'

const runFile = promisify(execFile)
const CLI = join(ROOT, 'dist', 'src', 'main.js')

let dir: string
let auditFile: string
let config: string

beforeAll(() => {
  expect(existsSync(CLI), 'run `npm run build` first').toBe(true)
  dir = mkdtempSync(join(tmpdir(), 'sluice-audit-crash-'))
  auditFile = join(dir, 'audit.jsonl')
  config = join(dir, 'sluice.yaml')
  writeFileSync(
    config,
    [
      'servers:',
      '  slow:',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(join(FIXTURES, 'servers', 'slow.mjs'))}]`,
      'audit:',
      '  file: audit.jsonl',
      '  fsync: true',
      'limits:',
      '  timeoutMs: 120000',
      '  callTimeoutMs: 120000',
      '',
    ].join('\n'),
  )
  writeFileSync(
    join(dir, 'slow.ts'),
    'await tools.slow.slow({ ms: 1 })\nreturn await tools.slow.slow({ ms: 600000, tag: "pending" })\n',
  )
  writeFileSync(join(dir, 'quick.ts'), 'return await tools.slow.slow({ ms: 1 })\n')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function verify(): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await runFile(process.execPath, [CLI, 'audit', 'verify', auditFile])
    return { code: 0, out: stdout, err: stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, out: err.stdout, err: err.stderr }
  }
}

/** Direct children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

/** Polls until `check` is true (the child's progress shows only in the file). */
async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('sluice run killed mid-run', () => {
  it('leaves a file that verifies up to its last complete record', async () => {
    const child = spawn(process.execPath, [CLI, 'run', '--config', config, join(dir, 'slow.ts')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    )
    try {
      // The second call's decision is on disk: the call is now pending at the upstream.
      await until(
        () => readAudit(auditFile).filter((r) => r.type === 'call.decision').length === 2,
        'the pending call',
      )
    } finally {
      // The upstream child would outlive its parent (its stdin stays open a while): end it too.
      const upstreams = childrenOf(child.pid!)
      child.kill('SIGKILL')
      for (const pid of upstreams) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
    expect(await exited).toBe('SIGKILL')

    const records = readAudit(auditFile)
    expect(records.map((r) => [r.type, r.status ?? r.decision ?? null])).toEqual([
      ['execution.start', null],
      ['call.decision', 'allow'],
      ['call.result', 'ok'],
      ['call.decision', 'allow'],
    ])
    const last = records.at(-1)!
    const { code, out } = await verify()
    expect(code).toBe(0)
    expect(out).toBe(`ok: 4 records, last seq ${String(last.seq)}, head ${String(last.hash)}\n`)
  }, 90_000)

  it('reports a torn last line, then the next run recovers and the chain verifies', async () => {
    const before = readAudit(auditFile)
    // What a kill in the middle of a write leaves: part of a line, no newline.
    appendFileSync(auditFile, '{"seq":5,"time":"2026-01-01T00:00:00.000Z","type":"call.res')
    const torn = await verify()
    expect(torn.code).toBe(0)
    expect(torn.out).toContain(`ok: ${before.length} records`)
    expect(torn.err).toMatch(/^sluice audit: warning: .*line 5/m)

    const { stdout } = await runFile(process.execPath, [
      CLI,
      'run',
      '--config',
      config,
      join(dir, 'quick.ts'),
    ])
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, result: 'waited 1 ms' })
    const after = await verify()
    expect(after.code).toBe(0)
    expect(after.out).toMatch(/^ok: /)
    const text = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean)
    // The torn bytes stay (append-only storage), closed by a newline and accounted for.
    expect(text[4]).toBe('{"seq":5,"time":"2026-01-01T00:00:00.000Z","type":"call.res')
    const recovery = JSON.parse(text[5]!) as { type: string; torn: { line: number }; prev: string }
    expect(recovery).toMatchObject({
      type: 'recovery',
      torn: { line: 5 },
      prev: before.at(-1)!.hash,
    })
  }, 90_000)
})
