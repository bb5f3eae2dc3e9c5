/**
 * What `sluice run` prints, whatever the result looks like: a deeply nested result is a clean
 * OUTPUT_LIMIT (no host RangeError on stderr), and a large result reaches a slow reader whole
 * before the process exits.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/runtime.js'

const CLI = join(ROOT, 'dist/src/main.js')
const dir = mkdtempSync(join(tmpdir(), 'sluice-run-output-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const bigConfig = join(dir, 'big.yaml')
writeFileSync(bigConfig, 'limits: { maxOutputBytes: 8388608 }\n')

interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `sluice run -` with `code` on stdin; the reader pauses `pauseMs` before reading stdout. */
function sluiceRun(code: string, pauseMs = 0, args: string[] = []): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'run', ...args, '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stderr.on('data', (c: Buffer) => err.push(c))
    if (pauseMs > 0) {
      // Not reading lets the pipe fill (64 KiB), so the writer must wait for this reader.
      child.stdout.pause()
      child.stderr.once('data', () => setTimeout(() => child.stdout.resume(), pauseMs))
    }
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.on('error', reject)
    child.on('close', (exit) =>
      resolve({
        code: exit,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    )
    child.stdin.end(code)
  })
}

describe('sluice run output', () => {
  it('a small but deeply nested result is OUTPUT_LIMIT, printed as JSON, exit 1', async () => {
    const ran = await sluiceRun(
      'let o: any = 1\nfor (let i = 0; i < 5000; i++) o = { o }\nreturn o',
    )
    expect(ran.code).toBe(1)
    expect(JSON.parse(ran.stdout)).toEqual({
      ok: false,
      logs: [],
      calls: [],
      error: { code: 'OUTPUT_LIMIT', message: 'the result is nested deeper than 64 levels' },
    })
    expect(ran.stderr).not.toMatch(/RangeError|at .*\.js/)
  })

  it('a 5 MB result reaches a slow reader whole before the process exits', async () => {
    // Exiting at once dropped what was still queued for the pipe (≈220 KB arrived of 5 MB).
    const ran = await sluiceRun('"x".repeat(5e6)', 500, ['--config', bigConfig])
    expect(ran.code).toBe(0)
    expect(ran.stdout.length).toBe(5_000_045)
    expect(JSON.parse(ran.stdout)).toMatchObject({ ok: true, result: 'x'.repeat(5e6) })
  })
})
