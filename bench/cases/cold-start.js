/**
 * Case `cold-start`: wall time from `spawn(node)` to the first execution's result line, for a
 * child that imports the built sandbox, creates a pool (`workers: 1`) and runs the bench script
 * once. `node -e 0` (spawn → exit) is interleaved as the floor of any Node process here.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { isExpected } from '../lib/script.js'
import { SANDBOX_URL, loadSandbox } from '../lib/sluice.js'

export const title = 'cold process start to first execution'

const CHILD = fileURLToPath(new URL('../cold-child.js', import.meta.url))

export async function run({ quick, progress }) {
  await loadSandbox()
  const n = quick ? 4 : 12
  await spawnUntilLine([CHILD, SANDBOX_URL.href])
  const cold = []
  const empty = []
  const phases = { importMs: [], createMs: [], executeMs: [] }
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    await spawnUntilLine(['-e', '0'])
    empty.push(performance.now() - start)
    const { ms, line } = await spawnUntilLine([CHILD, SANDBOX_URL.href])
    const out = JSON.parse(line)
    if (!out.ok || !isExpected(out.result)) throw new Error(`cold child failed: ${line}`)
    cold.push(ms)
    for (const k of Object.keys(phases)) phases[k].push(out[k])
    progress(`${i + 1}/${n}`)
  }
  const s = summarize(cold)
  const metrics = [
    {
      label: 'spawn → first result (import + pool + 1 execute)',
      stats: s,
      target: '≤ 300 ms (p50)',
      met: s.p50 <= 300,
    },
  ]
  for (const [k, v] of Object.entries(phases)) {
    metrics.push({ label: `  in child: ${k}`, stats: summarize(v) })
  }
  metrics.push({ label: '`node -e 0`, spawn → exit (floor)', stats: summarize(empty) })
  return { metrics, details: { childOptions: { workers: 1 } } }
}

/** Spawns node with args; resolves at the first stdout line (or at exit when there is none). */
function spawnUntilLine(args) {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let buffered = ''
    let result
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      const nl = buffered.indexOf('\n')
      if (nl >= 0 && result === undefined) {
        result = { ms: performance.now() - start, line: buffered.slice(0, nl) }
      }
    })
    child.on('error', reject)
    // The child's own teardown (pool.close) is awaited so runs do not overlap, but not counted.
    child.on('exit', (code) => {
      if (result !== undefined) resolve(result)
      else if (code === 0) resolve({ ms: performance.now() - start, line: '' })
      else reject(new Error(`node ${args.join(' ')} exited with ${code}`))
    })
  })
}
