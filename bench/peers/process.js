/**
 * Peer: a process per run. `node -e` runs the (already transpiled) script with full Node
 * privileges in a child; tool calls travel as JSON lines over stdio. The time is spawn → result
 * line; the child's exit is awaited but not counted.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { performance } from 'node:perf_hooks'
import { answer, transpile } from '../lib/script.js'

// The child: reads answers on stdin, writes calls and the result on stdout, one JSON per line.
const CHILD = `
const rl = require('node:readline').createInterface({ input: process.stdin })
const pending = new Map()
let next = 0
rl.on('line', (line) => { const m = JSON.parse(line); pending.get(m.id)(m.value); pending.delete(m.id) })
const call = (server, tool, args) => new Promise((resolve) => {
  const id = next++
  pending.set(id, resolve)
  process.stdout.write(JSON.stringify({ id, server, tool, args }) + '\\n')
})
const tools = new Proxy({}, { get: (_, server) => new Proxy({}, { get: (_, tool) => (args) => call(server, tool, args) }) })
const logs = []
const console = { log: (...a) => logs.push(a.join(' ')) }
const AsyncFunction = (async () => {}).constructor
new AsyncFunction('tools', 'console', process.argv[1])(tools, console).then(
  (result) => { process.stdout.write(JSON.stringify({ result }) + '\\n'); process.exit(0) },
  (error) => { process.stdout.write(JSON.stringify({ error: String(error) }) + '\\n'); process.exit(1) },
)
`

export async function load() {
  return {
    id: 'process',
    label: 'process per run (node -e, stdio JSON lines)',
    note: 'process isolation baseline; the child has full Node privileges',
    run(ts) {
      return runChild(transpile(ts)).then((r) => r.result)
    },
    async close() {},
  }
}

/** Runs `js` in a fresh `node -e` child; resolves with the result and the spawn → result time. */
export function runChild(js) {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(process.execPath, ['-e', CHILD, js], { stdio: ['pipe', 'pipe', 'inherit'] })
    let outcome
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const m = JSON.parse(line)
      if ('id' in m) {
        child.stdin.write(
          `${JSON.stringify({ id: m.id, value: answer(m.server, m.tool, m.args) })}\n`,
        )
      } else {
        outcome = { ...m, ms: performance.now() - start }
      }
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (outcome?.error !== undefined) reject(new Error(outcome.error))
      else if (outcome === undefined) reject(new Error(`child exited with ${code} and no result`))
      else resolve(outcome)
    })
  })
}
