/**
 * Case `http`: one `execute_code` with one inner call through real `sluice serve` processes
 * (the built CLI), from the client's side: HTTP on 127.0.0.1, a bearer JWT (ES256, JWKS file)
 * verified on every request, a CEL policy evaluated on the call's arguments, the audit log
 * (fsync on, the default: each decision and execution end synced), a per-principal rate limit so the store is consulted on
 * every execution, and one cheap stdio upstream (the `store` fixture's `get-sum`).
 *
 * Four combinations: the protocol, 2025-11-25 with a session (SDK 1.x client, the session
 * opened once and reused) or 2026-07-28 stateless (SDK 2.x client pinned to it), times the
 * rate-limit store, in-process or Redis (a real `redis-server`; skipped with the reason when
 * there is none). Beside them, the same tool called directly: an SDK 1.x client over stdio to
 * the same fixture, no gateway (issue 14: added p50 ≤ 2 ms vs calling the tool directly; DESIGN.md
 * §6 said 5 ms).
 *
 * - **latency**: one client per combination, one execution at a time; rounds interleave the
 *   combinations and the direct call with the order rotated, so machine noise hits all alike.
 * - **throughput**: per combination, `CLIENTS` clients (each its own principal, token and, for
 *   2025-11-25, session) in a closed loop, each sending its next execution when the last one
 *   answered. Executions/s, with the CPU each process used (gateway, its main thread alone,
 *   the upstream, Redis, this load generator) and how busy the whole machine was, to say what
 *   saturated: on 2 cores the load generator shares them with the gateway.
 *
 * Every answer is checked (result 3, the call allowed); an error fails the case.
 *
 * @module
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { childrenOf, cpuMs, startGateway } from '../lib/gateway.js'
import { redisMissing, redisVersion, startRedis } from '../lib/redis.js'
import { SkipError } from '../lib/sluice.js'
import { fmtMs, summarize } from '../lib/stats.js'

export const title =
  'http: execute_code with one inner call over HTTP (JWT, CEL policy, audit), session vs stateless, in-process vs Redis store'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MAIN = join(ROOT, 'dist/src/main.js')
const STORE_FIXTURE = join(ROOT, 'test/fixtures/servers/store.mjs')

/** The one inner call, and the policy that allows it only for small arguments (CEL on `args`). */
const CODE = "return await tools.store['get-sum']({ a: 1, b: 2 })"
const ARGS = { a: 1, b: 2 }
const EXPECTED = 3
const POLICY = `rules:
  - id: small-sums
    effect: allow
    when: tool.server == "store" && tool.name == "get-sum" && args.a < 1000 && args.b < 1000
`
/** High enough never to refuse, so the store is asked on every execution and never says no. */
const EXECUTIONS_PER_MINUTE = 1_000_000
/** `limits.maxConcurrentExecutions`, the default, set here so that `CLIENTS` stays twice it. */
const MAX_CONCURRENT = 8
/** Closed-loop clients: twice the executions that may run at once, so some always wait. */
const CLIENTS = 2 * MAX_CONCURRENT

const PROTOCOLS = {
  session: '2025-11-25 session (SDK 1.x client, session reused)',
  stateless: '2026-07-28 stateless (SDK 2.x client)',
}
const STORES = { memory: 'in-process store', redis: 'Redis store' }

/** The installed version of a root dependency, for the report. */
const versionOf = (name) =>
  JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version

/** A `fetch` for the SDK transports that counts the HTTP requests it sends. */
function countingFetch() {
  const counter = { requests: 0 }
  const fetchLike = (url, init) => {
    counter.requests++
    return fetch(url, init)
  }
  return { counter, fetchLike }
}

/** An MCP client of `protocol` for `gateway` as principal `sub`; `call()` runs the code once. */
async function connect(protocol, gateway, sub) {
  const token = await gateway.token(sub)
  const { counter, fetchLike } = countingFetch()
  const options = {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: fetchLike,
  }
  const url = new URL(gateway.url)
  const client =
    protocol === 'session'
      ? new ClientV1({ name: 'sluice-bench', version: '0.0.1' })
      : new Client(
          { name: 'sluice-bench', version: '0.0.1' },
          { versionNegotiation: { mode: { pin: '2026-07-28' } } },
        )
  const transport =
    protocol === 'session'
      ? new TransportV1(url, options)
      : new StreamableHTTPClientTransport(url, options)
  try {
    await client.connect(transport)
    const negotiated =
      protocol === 'session' ? transport.protocolVersion : client.getNegotiatedProtocolVersion()
    const want = protocol === 'session' ? '2025-11-25' : '2026-07-28'
    if (negotiated !== want) throw new Error(`${protocol}: negotiated ${negotiated}, not ${want}`)
    if ((transport.sessionId !== undefined) !== (protocol === 'session'))
      throw new Error(`${protocol}: session id ${transport.sessionId}`)
  } catch (error) {
    await client.close().catch(() => undefined)
    throw error
  }
  return {
    counter,
    call: async () =>
      checked(await client.callTool({ name: 'execute_code', arguments: { code: CODE } })),
    close: () => client.close(),
  }
}

/** Throws unless the execution answered 3 with the one call allowed. */
function checked(answer) {
  const r = answer.structuredContent
  if (
    answer.isError ||
    r?.ok !== true ||
    r.result !== EXPECTED ||
    r.calls?.[0]?.decision !== 'allow'
  )
    throw new Error(`unexpected answer: ${JSON.stringify(answer).slice(0, 300)}`)
  return r
}

/** The tool without the gateway: an SDK 1.x client over stdio to the same fixture. */
async function connectDirect() {
  const client = new ClientV1({ name: 'sluice-bench-direct', version: '0.0.1' })
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [STORE_FIXTURE],
      stderr: 'ignore',
    }),
  )
  return {
    call: async () => {
      const answer = await client.callTool({ name: 'get-sum', arguments: ARGS })
      if (answer.isError || answer.content?.[0]?.text !== String(EXPECTED))
        throw new Error(`unexpected direct answer: ${JSON.stringify(answer).slice(0, 300)}`)
    },
    close: () => client.close(),
  }
}

/** Busy and total CPU time of the whole machine so far (all processes), from /proc/stat. */
function machineTicks() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.map(Number)
  const total = user + nice + system + idle + iowait + irq + softirq + steal
  return { busy: total - idle - iowait, total }
}

const ownCpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const sum = (xs) => xs.reduce((s, x) => s + x, 0)

/** CPU used so far by each process the closed loop involves, in ms. */
function cpuNow(gateway, redis) {
  return {
    gateway: gateway.cpuMs(),
    mainThread: gateway.mainThreadCpuMs(),
    upstream: sum(childrenOf(gateway.pid).map((pid) => cpuMs(pid))),
    redis: redis === undefined ? 0 : cpuMs(redis.pid),
    loadGenerator: ownCpuMs(),
    machine: machineTicks(),
  }
}

/**
 * `clients` in a closed loop for `durationMs`: executions/s, latency under load, and the CPU
 * each process used as a share of one core, plus the whole machine's busy share of all cores.
 */
async function closedLoop(clients, durationMs, gateway, redis) {
  const latencies = []
  const before = cpuNow(gateway, redis)
  const start = performance.now()
  const end = start + durationMs
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < end) {
        const sent = performance.now()
        await c.call()
        latencies.push(performance.now() - sent)
      }
    }),
  )
  const wallMs = performance.now() - start
  const after = cpuNow(gateway, redis)
  const n = latencies.length
  const used = Object.fromEntries(PROCESSES.map((k) => [k, after[k] - before[k]]))
  const machine = after.machine
  return {
    perSec: n / (wallMs / 1000),
    executions: n,
    seconds: wallMs / 1000,
    latencyMs: summarize(latencies),
    /** Shares of one core (1 = a whole core) over the phase. */
    cpuCores: Object.fromEntries(PROCESSES.map((k) => [k, used[k] / wallMs])),
    cpuMsPerExecution: Object.fromEntries(PROCESSES.map((k) => [k, used[k] / n])),
    machineBusy:
      (machine.busy - before.machine.busy) / Math.max(1, machine.total - before.machine.total),
  }
}

/** What `cpuNow` measures, each counted separately (`mainThread` is part of `gateway`). */
const PROCESSES = ['gateway', 'mainThread', 'upstream', 'redis', 'loadGenerator']

/**
 * Executions/s these processes would reach with `cores` to themselves: the cores' time over
 * the CPU one execution cost them all. An estimate that other processes' load does not move.
 */
function cpuCeiling(r, cores) {
  const c = r.cpuMsPerExecution
  return (cores * 1000) / (c.gateway + c.upstream + c.redis + c.loadGenerator)
}

/** In words: what ran out first in a closed-loop phase. */
function saturation(r, cores) {
  const c = r.cpuCores
  const ours = c.gateway + c.upstream + c.redis + c.loadGenerator
  const others = Math.max(0, r.machineBusy * cores - ours)
  const parts = [
    `gateway ${pct(c.gateway)} (main thread ${pct(c.mainThread)})`,
    `upstream ${pct(c.upstream)}`,
    ...(c.redis > 0 ? [`redis ${pct(c.redis)}`] : []),
    `load generator ${pct(c.loadGenerator)}`,
    `other processes ${pct(others)}`,
  ]
  const verdict =
    c.mainThread >= SATURATED
      ? `the gateway's main thread (${pct(c.mainThread)} of a core)`
      : r.machineBusy >= SATURATED
        ? `CPU, the machine's ${cores} cores ${pct(r.machineBusy)} busy`
        : `not CPU (the machine ${pct(r.machineBusy)} busy): the clients wait on something else`
  return `saturates: ${verdict}; CPU in cores: ${parts.join(', ')}`
}

/** A share of a core (or of the machine) from which it counts as the bottleneck. */
const SATURATED = 0.85
const pct = (x) => `${(x * 100).toFixed(0)}%`

/**
 * What one fdatasync costs where the gateways keep their audit (the OS temp folder): a 400-byte
 * append then `FileHandle.datasync()`, as the audit log does, `n` times. Milliseconds.
 */
async function fdatasyncCost(n) {
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-fsync-'))
  const handle = await open(join(dir, 'probe.jsonl'), 'a')
  const line = Buffer.from(`${'x'.repeat(399)}\n`)
  const ms = []
  try {
    for (let i = 0; i < n; i++) {
      writeSync(handle.fd, line)
      const start = performance.now()
      await handle.datasync()
      ms.push(performance.now() - start)
    }
  } finally {
    await handle.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const s = summarize(ms)
  return {
    what: 'append 400 B + FileHandle.datasync() in the OS temp folder',
    n,
    p50: s.p50,
    p99: s.p99,
  }
}

export async function run({ quick, progress }) {
  if (!existsSync(MAIN))
    throw new SkipError(`${MAIN} is missing (run \`npm run build\` at the repository root)`)
  const rounds = quick ? 150 : 1000
  const warm = quick ? 20 : 100
  const loopMs = quick ? 3000 : 15_000
  const loopWarmMs = quick ? 1000 : 3000
  const cores = os.cpus().length
  const metrics = []
  const details = {
    code: CODE,
    policy: POLICY,
    closedLoopClients: CLIENTS,
    limits: {
      maxConcurrentExecutions: MAX_CONCURRENT,
      perPrincipal: { executionsPerMinute: EXECUTIONS_PER_MINUTE },
    },
    sandbox: 'defaults (workers min(2, cores), up to maxConcurrentExecutions)',
    audit: 'fsync before each effect (call decision, execution end)',
    clients: {
      session: `@modelcontextprotocol/sdk ${versionOf('@modelcontextprotocol/sdk')}`,
      stateless: `@modelcontextprotocol/client ${versionOf('@modelcontextprotocol/client')}`,
    },
    requestsPerExecution: {},
    closedLoop: {},
  }

  const noRedis = redisMissing()
  const stores = noRedis === undefined ? ['memory', 'redis'] : ['memory']
  if (noRedis === undefined) details.redisVersion = redisVersion()
  const combos = stores.flatMap((store) =>
    Object.keys(PROTOCOLS).map((protocol) => ({ store, protocol, id: `${protocol}+${store}` })),
  )

  const open = [] // everything to release, newest first
  let redis
  try {
    if (noRedis === undefined) {
      redis = await startRedis()
      open.unshift(() => redis.close())
    }
    const gateways = {}
    for (const store of stores) {
      progress(`starting sluice serve (${STORES[store]})`)
      const gateway = await startGateway({
        servers: { store: { command: process.execPath, args: [STORE_FIXTURE] } },
        policy: POLICY,
        limits: details.limits,
        ...(store === 'redis' ? { store: { redis: { url: redis.url } } } : {}),
        audit: 'fsync',
      })
      open.unshift(() => gateway.stop())
      gateways[store] = gateway
    }

    // Latency: one client each, one execution at a time, interleaved with the direct call.
    const direct = await connectDirect()
    open.unshift(() => direct.close())
    const runners = [{ id: 'direct', call: direct.call }]
    for (const combo of combos) {
      const client = await connect(combo.protocol, gateways[combo.store], 'bench-latency')
      open.unshift(() => client.close())
      runners.push({ id: combo.id, call: client.call, counter: client.counter })
    }
    for (const r of runners) for (let i = 0; i < warm; i++) await r.call()
    const samples = new Map(runners.map((r) => [r.id, []]))
    const sent = new Map(runners.map((r) => [r.id, r.counter?.requests ?? 0]))
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < runners.length; k++) {
        const r = runners[(round + k) % runners.length]
        const start = performance.now()
        await r.call()
        samples.get(r.id).push(performance.now() - start)
      }
      if (round % 250 === 249) progress(`latency ${round + 1}/${rounds}`)
    }
    for (const r of runners) {
      if (r.counter !== undefined)
        details.requestsPerExecution[r.id] = (r.counter.requests - sent.get(r.id)) / rounds
    }

    details.fdatasync = await fdatasyncCost(quick ? 100 : 400)

    const directStats = summarize(samples.get('direct'))
    metrics.push({
      label: 'direct: get-sum over stdio, SDK 1.x client, no gateway (baseline)',
      stats: directStats,
    })
    const added = []
    for (const combo of combos) {
      const s = summarize(samples.get(combo.id))
      metrics.push({
        label: `${PROTOCOLS[combo.protocol]}, ${STORES[combo.store]}: execute_code + 1 inner call, client wall`,
        stats: s,
      })
      added.push([combo, s.p50 - directStats.p50])
    }

    // Throughput: CLIENTS clients per combination, one combination at a time.
    const loops = []
    for (const combo of combos) {
      progress(`closed loop, ${CLIENTS} clients, ${combo.id}`)
      const gateway = gateways[combo.store]
      const clients = []
      try {
        for (let i = 0; i < CLIENTS; i++)
          clients.push(await connect(combo.protocol, gateway, `bench-load-${i}`))
        await closedLoop(clients, loopWarmMs, gateway, undefined)
        const r = await closedLoop(
          clients,
          loopMs,
          gateway,
          combo.store === 'redis' ? redis : undefined,
        )
        details.closedLoop[combo.id] = r
        loops.push([combo, r])
      } finally {
        await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
      }
    }

    for (const [combo, ms] of added) {
      metrics.push({
        label: `added p50 vs direct, ${PROTOCOLS[combo.protocol]}, ${STORES[combo.store]}`,
        value: `${fmtMs(ms)} (incl. the audit's 2 fdatasyncs, ${fmtMs(details.fdatasync.p50)} each at p50 here)`,
        target: '≤ 2 ms',
        met: ms <= 2,
      })
    }
    for (const [combo, r] of loops) {
      const c = r.cpuMsPerExecution
      metrics.push({
        label: `executions/s on ${cores} cores, ${CLIENTS} clients in a closed loop, ${PROTOCOLS[combo.protocol]}, ${STORES[combo.store]}`,
        value:
          `${r.perSec.toFixed(0)}/s over ${r.seconds.toFixed(0)} s; latency p50 ${fmtMs(r.latencyMs.p50)}, p99 ${fmtMs(r.latencyMs.p99)}; ` +
          `CPU per execution: gateway ${fmtMs(c.gateway)} (main thread ${fmtMs(c.mainThread)}), upstream ${fmtMs(c.upstream)}, ` +
          `${c.redis > 0 ? `redis ${fmtMs(c.redis)}, ` : ''}load generator ${fmtMs(c.loadGenerator)}, ` +
          `so at most ${cpuCeiling(r, cores).toFixed(0)}/s with the ${cores} cores to these processes`,
        note: saturation(r, cores),
      })
    }
    if (noRedis !== undefined) {
      for (const protocol of Object.keys(PROTOCOLS))
        metrics.push({ label: `${PROTOCOLS[protocol]}, ${STORES.redis}`, skipped: noRedis })
    }
    return { metrics, details }
  } finally {
    for (const release of open) await release().catch(() => undefined)
  }
}
