/**
 * Child of the `cold-start` case: a fresh `node` that imports the built sandbox, creates a pool,
 * runs the bench script once and prints one JSON line, as `sluice run` would on a cold start.
 * argv[2] is the sandbox module URL. Phase times are from process start (`performance.timeOrigin`).
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { MANIFEST, SCRIPT, answer } from './lib/script.js'

const sandbox = await import(process.argv[2])
const imported = performance.now()
const pool = await sandbox.SandboxPool.create({ workers: 1 })
const created = performance.now()
try {
  const res = await pool.execute({
    code: SCRIPT,
    manifest: MANIFEST,
    onCall: async (call) => ({ ok: true, value: answer(call.server, call.tool, call.args) }),
  })
  const done = performance.now()
  process.stdout.write(
    `${JSON.stringify({ ok: res.ok, result: res.result, error: res.error, importMs: imported, createMs: created - imported, executeMs: done - created, sinceStartMs: done })}\n`,
  )
} finally {
  await pool.close()
}
