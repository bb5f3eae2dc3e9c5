/**
 * The README's own flow with two processes on one audit path: `sluice serve` runs, `sluice run`
 * with the same config executes beside it; the chain does not fork (the second process writes
 * a segment of its own), `sluice audit verify FOLDER` checks both chains, and the next `serve`
 * starts. Also what `audit verify` says of a missing path.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/runtime.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
let dir: string
let config: string

function sluice(args: string[], input?: string) {
  return spawnSync(process.execPath, [MAIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    input,
    timeout: 60_000,
  })
}

function serve(): Promise<{ child: ChildProcess; stop(): Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    [MAIN, 'serve', '--config', config, '--port', '0', '--insecure-dev'],
    {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  return new Promise((resolve, reject) => {
    let stderr = ''
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
      if (/sluice gateway listening on/.test(stderr)) {
        resolve({
          child,
          stop: () => {
            child.kill('SIGTERM')
            return exited
          },
        })
      }
    })
    void exited.then((code) => reject(new Error(`serve exited with ${String(code)}:\n${stderr}`)))
  })
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-audit-writers-'))
  config = join(dir, 'sluice.yaml')
  writeFileSync(config, 'audit: { file: data/audit.jsonl }\nsandbox: { workers: 1 }\n')
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('two processes on one audit path', () => {
  it('serve, then run beside it: no fork, both chains verify, and serve starts again', async () => {
    const first = await serve()
    const ran = sluice(['run', '--config', config, '-'], 'return 6 * 7')
    expect(ran.status, ran.stderr).toBe(0)
    expect(JSON.parse(ran.stdout)).toMatchObject({ ok: true, result: 42 })
    expect(ran.stderr).toMatch(
      /audit\.jsonl is being written by pid \d+ .*: this process writes its own chain/,
    )
    expect(await first.stop()).toBe(0)

    const files = readdirSync(join(dir, 'data')).sort()
    // The segment's name sorts before the main file's ('2…' < 'j…'). `run` closed its segment,
    // so its signed head is beside it; serve ran nothing, so its chain is empty and has none.
    expect(files).toEqual([
      expect.stringMatching(/^audit\.\d{8}T\d{6}Z-\d+\.jsonl$/),
      expect.stringMatching(/^audit\.\d{8}T\d{6}Z-\d+\.jsonl\.head\.json$/),
      'audit.jsonl',
    ])
    expect(files[1]).toBe(`${files[0]}.head.json`)
    const verify = sluice(['audit', 'verify', join(dir, 'data')])
    expect(verify.status, verify.stdout).toBe(0)
    const lines = verify.stdout.trim().split('\n')
    expect(lines).toHaveLength(2)
    for (const line of lines)
      expect(line).toMatch(
        /^audit\.[\w.-]+: ok: \d+ records, last seq \d+, head sha256:[0-9a-f]{64}$/,
      )

    // The next start resumes the main chain: nothing forked, nothing refused.
    const again = await serve()
    expect(await again.stop()).toBe(0)
    expect(sluice(['audit', 'verify', join(dir, 'data', 'audit.jsonl')]).status).toBe(0)
  })

  it('audit verify on a missing path says so, exit 2', () => {
    const missing = join(dir, 'nope.jsonl')
    const out = sluice(['audit', 'verify', missing])
    expect(out.status).toBe(2)
    expect(out.stderr).toBe(`sluice audit: no such file: ${missing}\n`)
  })
})
