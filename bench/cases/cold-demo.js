/**
 * Case `cold-demo`: cold start of the whole gateway with the demo config, from the client's side:
 * wall time from `spawn(node dist/src/main.js serve --config <demo copy> --port 0)` to the answer
 * of the first `execute_code`. On the clock, in order: Node's start; importing the CLI and the
 * gateway; loading and checking the config, the demo policy and the lock; opening the audit log
 * (fsync on, as the demo ships); the sandbox pool (default workers) with its warm-up;
 * starting the three demo upstreams (memory, filesystem, everything: each a `node` process over
 * stdio) through `initialize` and their tool listing; listening on HTTP; then this client's
 * `initialize` + `notifications/initialized` (one session, 2025-11-25, a JWT verified on each
 * request) and one `execute_code` whose program makes two inner calls (memory `read_graph`,
 * filesystem `list_directory`), each through policy, audit and span.
 *
 * Off the clock: minting the dev issuer's keys and the token, and the gateway's shutdown. The
 * config is the shipped `examples/demo/sluice.yaml`, copied to a temp folder with its paths made
 * absolute; only the JWKS (a temp dev issuer), the audit file and the memory graph
 * (`SLUICE_DEMO_MEMORY_FILE`) live in the temp folder, so nothing is written under `examples/`.
 * Interleaved as floors: `node -e 0`, and the three demo upstreams alone (spawned in parallel
 * by an SDK client, each to its `tools/list` answered, as the gateway needs them before it
 * listens), which no change to sluice can make faster.
 *
 * At the "listening" line the case also reads, from `/proc` (Linux; the rows are left out
 * elsewhere), the CPU time the gateway process has used (all its threads: main, sandbox workers,
 * V8 and libuv helpers) and its upstream processes together: on a machine of C cores, their sum
 * over C is a floor for the wall time to listening, whatever runs in parallel.
 *
 * @module
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { parse, stringify } from 'yaml'
import { Session } from '../lib/gateway.js'
import { SkipError } from '../lib/sluice.js'
import { summarize } from '../lib/stats.js'

export const title = 'cold process start to first execute_code answered, demo config (serve, HTTP)'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The built CLI; `SLUICE_BENCH_MAIN` may point at another build (an A/B of two commits). */
const MAIN = process.env.SLUICE_BENCH_MAIN ?? join(ROOT, 'dist', 'src', 'main.js')
const DEMO = join(ROOT, 'examples', 'demo')
const CODE = `const graph = await tools.memory.read_graph({})
const files = await tools.filesystem.list_directory({ path: '.' })
return { entities: graph.entities.length, readme: files.content.includes('README.md') }`

export async function run({ quick, progress }) {
  if (!existsSync(MAIN)) throw new SkipError(`${MAIN} is missing: run \`npm run build\` first`)
  const demo = prepare()
  try {
    const n = quick ? 3 : 10
    await coldStart(MAIN, demo) // not counted: the page cache, as after any first start
    const phases = { total: [], listening: [], session: [], execute: [] }
    const cpu = { gateway: [], upstreams: [] }
    const empty = []
    const upstreamsAlone = []
    for (let i = 0; i < n; i++) {
      const start = performance.now()
      spawnSync(process.execPath, ['-e', '0'])
      empty.push(performance.now() - start)
      upstreamsAlone.push(await upstreamsOnly(demo))
      const r = await coldStart(MAIN, demo)
      for (const k of Object.keys(phases)) phases[k].push(r[k])
      if (r.cpu !== undefined) {
        cpu.gateway.push(r.cpu.gatewayMs)
        cpu.upstreams.push(r.cpu.upstreamsMs)
      }
      progress(`${i + 1}/${n}`)
    }
    const s = summarize(phases.total)
    return {
      metrics: [
        {
          label: 'spawn → first execute_code answered (serve, demo config, 3 stdio upstreams)',
          stats: s,
          target: '≤ 300 ms (p50)',
          met: s.p50 <= 300,
        },
        { label: '  spawn → "listening" on stderr', stats: summarize(phases.listening) },
        { label: '  → session open (initialize + initialized)', stats: summarize(phases.session) },
        { label: '  → execute_code answered (2 inner calls)', stats: summarize(phases.execute) },
        ...(cpu.gateway.length === n
          ? [
              {
                label: '  CPU used by "listening": the gateway process, all threads',
                stats: summarize(cpu.gateway),
              },
              {
                label: '  CPU used by "listening": its 3 upstream processes together',
                stats: summarize(cpu.upstreams),
              },
              {
                label: `  floor from that CPU: (gateway + upstreams) / ${CORES} cores`,
                stats: summarize(cpu.gateway.map((g, i) => (g + cpu.upstreams[i]) / CORES)),
              },
            ]
          : []),
        {
          label: 'the 3 demo upstreams alone, in parallel: spawn → last tools/list (floor)',
          stats: summarize(upstreamsAlone),
        },
        { label: '`node -e 0`, spawn → exit (floor)', stats: summarize(empty) },
      ],
      details: {
        config: 'examples/demo/sluice.yaml (copied; JWKS, audit and memory file in a temp folder)',
        cpuClockTicksMs: CLOCK_TICK_MS,
        code: CODE,
      },
    }
  } finally {
    demo.remove()
  }
}

/**
 * The demo config copied to a temp folder (paths absolute; JWKS, audit and memory file there),
 * with a token for it. Off the clock. `remove()` deletes the folder.
 */
export function prepare(main = MAIN) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cold-demo-'))
  const issuerDir = join(dir, 'dev-issuer')
  cli(main, ['token', '--init', '--dir', issuerDir])
  const token = cli(main, [
    'token',
    '--dir',
    issuerDir,
    '--sub',
    'alice',
    '--scope',
    'memory:write',
  ])
  const text = readFileSync(join(DEMO, 'sluice.yaml'), 'utf8').replaceAll(
    '${SLUICE_CONFIG_DIR}',
    DEMO,
  )
  const raw = parse(text)
  raw.policies = raw.policies.map((p) => resolve(DEMO, p))
  raw.lock.file = resolve(DEMO, raw.lock.file)
  raw.identity.issuers[0].jwksFile = join(issuerDir, 'dev-issuer.jwks.json')
  raw.audit.file = join(dir, 'audit.jsonl')
  const configFile = join(dir, 'sluice.yaml')
  writeFileSync(configFile, stringify(raw))
  const env = { ...process.env, SLUICE_DEMO_MEMORY_FILE: join(dir, 'memory.jsonl') }
  const servers = parse(
    readFileSync(configFile, 'utf8').replaceAll('${SLUICE_CONFIG_DIR}', DEMO),
  ).servers

  return {
    configFile,
    env,
    token,
    servers,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** The demo's upstreams without the gateway: spawn each, initialize, list; ms to the last. */
export async function upstreamsOnly({ servers, env }) {
  const start = performance.now()
  const clients = []
  try {
    await Promise.all(
      Object.values(servers).map(async (server) => {
        const client = new Client({ name: 'sluice-bench', version: '0.0.0' })
        clients.push(client)
        const memory = { MEMORY_FILE_PATH: env.SLUICE_DEMO_MEMORY_FILE }
        await client.connect(
          new StdioClientTransport({
            command: server.command === 'node' ? process.execPath : server.command,
            args: server.args,
            env: { ...env, ...memory },
            stderr: 'ignore',
          }),
        )
        await client.listTools()
      }),
    )
    return performance.now() - start
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
  }
}

const CORES = availableParallelism()

/** `/proc/<pid>/stat` counts CPU in clock ticks: 100 per second on Linux (USER_HZ). */
const CLOCK_TICK_MS = 10

/** The fields of `/proc/<pid>/stat` after the command name (which may hold spaces). */
function statFields(pid) {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
}

/** utime + stime of one process (all its threads), ms; undefined once it is gone. */
function cpuMs(pid) {
  try {
    const fields = statFields(pid)
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS
  } catch {
    return undefined
  }
}

/** CPU used so far by `pid` and, together, by its child processes; undefined without `/proc`. */
function cpuAt(pid) {
  const gatewayMs = cpuMs(pid)
  if (gatewayMs === undefined) return undefined
  let upstreamsMs = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (Number(statFields(entry)[1]) === pid) upstreamsMs += cpuMs(entry) ?? 0
    } catch {
      // Gone meanwhile.
    }
  }
  return { gatewayMs, upstreamsMs }
}

function cli(main, args) {
  const r = spawnSync(process.execPath, [main, ...args], { cwd: ROOT, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`sluice ${args.join(' ')}: ${r.stderr}`)
  return r.stdout.trim()
}

/** One cold start of `main`: spawn, wait for the listening line, open a session, run CODE once. */
export async function coldStart(main, { configFile, env, token }) {
  const start = performance.now()
  const child = spawn(process.execPath, [main, 'serve', '--config', configFile, '--port', '0'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.resume()
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    let stderr = ''
    const url = await new Promise((resolve, reject) => {
      const onData = (chunk) => {
        stderr += chunk.toString('utf8')
        const m = /sluice gateway listening on (\S+)/.exec(stderr)
        if (m) {
          child.stderr.off('data', onData)
          child.stderr.resume()
          resolve(m[1])
        }
      }
      child.stderr.on('data', onData)
      child.once('exit', (code) => reject(new Error(`serve exited (${code}):\n${stderr}`)))
    })
    const listening = performance.now()
    const cpu = cpuAt(child.pid)
    const session = await new Session(url, token).open()
    const opened = performance.now()
    const out = await session.execute(CODE)
    const done = performance.now()
    if (!out.ok || out.result?.readme !== true)
      throw new Error(`first execute_code failed: ${JSON.stringify(out)}`)
    return {
      total: done - start,
      listening: listening - start,
      session: opened - listening,
      execute: done - opened,
      ...(cpu === undefined ? {} : { cpu }),
    }
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}
