/**
 * The load test's and the soak's door to sluice: a real `sluice serve` process (the built CLI)
 * with JWT identity, a policy, the audit log and real stdio upstreams, and a lean MCP client
 * over Streamable HTTP that speaks just enough JSON-RPC to open a session and call
 * `execute_code`, so the client's own cost stays small beside the gateway it measures.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MAIN = join(ROOT, 'dist', 'src', 'main.js')
const PROBE = join(ROOT, 'bench', 'lib', 'probe.js')
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js')
const ISSUER = 'https://issuer.load.test'
const AUDIENCE = 'http://127.0.0.1/mcp'

/** The default upstream: server-everything over stdio, every tool of it allowed. */
const DEFAULT_SERVERS = {
  everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
}
const DEFAULT_POLICY =
  'rules:\n  - id: everything\n    effect: allow\n    when: tool.server == "everything"\n'

/**
 * Starts `sluice serve` on 127.0.0.1 with a fresh key pair, `servers` as its upstreams
 * (default: server-everything over stdio, allowed by `policy`), and `limits`, `store` and
 * `sandbox` merged into the config. Resolves once the gateway listens and the upstreams are
 * ready; `stop()` sends SIGTERM and removes the temp folder. With `probe`, every thread of the
 * gateway appends its V8 heap figures to `probe.file` every `probe.everyMs` (bench/lib/probe.js).
 *
 * @param {{
 *   servers?: Record<string, unknown>,
 *   policy?: string,
 *   limits?: Record<string, unknown>,
 *   store?: Record<string, unknown>,
 *   sandbox?: Record<string, unknown>,
 *   audit?: 'fsync' | 'nofsync' | 'off',
 *   probe?: { file: string, everyMs: number },
 * }} options
 */
export async function startGateway(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-load-'))
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'load', alg: 'ES256', use: 'sig' }
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }))
  writeFileSync(join(dir, 'policy.yaml'), options.policy ?? DEFAULT_POLICY)
  const audit = options.audit ?? 'fsync'
  const config = {
    servers: options.servers ?? DEFAULT_SERVERS,
    policies: ['policy.yaml'],
    identity: { audience: AUDIENCE, issuers: [{ issuer: ISSUER, jwksFile: 'jwks.json' }] },
    ...(audit === 'off' ? {} : { audit: { file: 'audit.jsonl', fsync: audit === 'fsync' } }),
    limits: { timeoutMs: 30_000, ...options.limits },
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.sandbox === undefined ? {} : { sandbox: options.sandbox }),
    // SLUICE_BENCH_GATEWAY: a JSON `gateway:` block, e.g. '{"resumability":{"maxBytes":0}}' to
    // compare a run without resumable streams.
    ...(process.env.SLUICE_BENCH_GATEWAY === undefined
      ? {}
      : { gateway: JSON.parse(process.env.SLUICE_BENCH_GATEWAY) }),
  }
  writeFileSync(join(dir, 'sluice.yaml'), JSON.stringify(config, null, 2))

  const child = spawn(
    process.execPath,
    // SLUICE_LOAD_NODE_OPTIONS: flags for the gateway's node, e.g. `--cpu-prof` to profile it.
    [
      ...(process.env.SLUICE_LOAD_NODE_OPTIONS?.split(' ').filter(Boolean) ?? []),
      ...(options.probe === undefined ? [] : ['--import', PROBE]),
      MAIN,
      'serve',
      '--config',
      join(dir, 'sluice.yaml'),
      '--port',
      '0',
    ],
    // fastify's request log goes to stdout: a real deployment writes it, so it is drained, not off.
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env:
        options.probe === undefined
          ? process.env
          : {
              ...process.env,
              SLUICE_PROBE_FILE: options.probe.file,
              SLUICE_PROBE_MS: String(options.probe.everyMs),
            },
    },
  )
  // SLUICE_LOAD_STDOUT=FILE keeps the gateway's stdout (its request log, or `--trace-gc` lines).
  if (process.env.SLUICE_LOAD_STDOUT === undefined) child.stdout.resume()
  else child.stdout.pipe(createWriteStream(process.env.SLUICE_LOAD_STDOUT))
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const code = await exited
    rmSync(dir, { recursive: true, force: true })
    return code
  }
  let stderr = ''
  const listening = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      stderr += chunk.toString('utf8')
      const m = /sluice gateway listening on (\S+)/.exec(stderr)
      if (m) {
        child.stderr.off('data', onData)
        // SLUICE_LOAD_VERBOSE=1 shows the gateway's own log (warnings, errors) while it runs.
        if (process.env.SLUICE_LOAD_VERBOSE === '1') child.stderr.pipe(process.stderr)
        else child.stderr.resume()
        resolve(m[1])
      }
    }
    child.stderr.on('data', onData)
    child.once('exit', (code) =>
      reject(new Error(`sluice serve exited (${code}) before listening:\n${stderr}`)),
    )
  })
  let url
  try {
    url = await listening
    await untilReady(url)
  } catch (error) {
    await stop()
    throw error
  }

  const sign = (sub) =>
    new SignJWT({ scope: 'load' })
      .setProtectedHeader({ alg: 'ES256', kid: 'load' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(privateKey)

  return {
    url,
    pid: child.pid,
    dir,
    /** A bearer token for principal `sub`. */
    token: sign,
    /** Resident set of the gateway process in MiB (Linux /proc). */
    rssMiB: () => rssMiB(child.pid),
    /** CPU time of the gateway process (all its threads) so far, in ms. */
    cpuMs: () => cpuMs(child.pid),
    /** CPU time of its main thread alone (the event loop: HTTP, JWT, MCP, policy), in ms. */
    mainThreadCpuMs: () => threadCpuMs(child.pid, child.pid),
    /** SIGTERM (unless it already exited), wait for the exit, remove the temp folder. */
    stop,
  }
}

async function untilReady(url) {
  const deadline = Date.now() + 30_000
  for (;;) {
    const res = await fetch(new URL('/readyz', url)).catch(() => undefined)
    if (res?.ok) return
    if (Date.now() > deadline) throw new Error(`gateway not ready: ${res?.status}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** CPU time (user + system) a process has used so far, in milliseconds (Linux /proc). */
export function cpuMs(pid) {
  return ticksMs(`/proc/${pid}/stat`)
}

/** CPU time of one thread `tid` of process `pid` so far, in milliseconds (Linux /proc). */
export function threadCpuMs(pid, tid) {
  return ticksMs(`/proc/${pid}/task/${tid}/stat`)
}

function ticksMs(file) {
  const stat = readFileSync(file, 'utf8')
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / CLOCK_TICKS_PER_S
}

/** Process ids of the direct children of `pid` (its stdio upstreams), from Linux /proc. */
export function childrenOf(pid) {
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

/** USER_HZ: 100 on every Linux this runs on (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_S = 100

export function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1])
  return Math.round((kib / 1024) * 10) / 10
}

/**
 * The JSON-RPC message in a response body: plain JSON, or the first SSE `data:` event with a
 * payload (a resumable stream opens with an event that carries only its id).
 */
function messageOf(contentType, text) {
  if (contentType?.startsWith('text/event-stream')) {
    const line = text.split('\n').find((l) => l.startsWith('data: ') && l.length > 6)
    if (line === undefined) throw new Error(`no data event in the SSE body: ${text.slice(0, 200)}`)
    return JSON.parse(line.slice(6))
  }
  return JSON.parse(text)
}

/**
 * One MCP session over Streamable HTTP (protocol 2025-11-25): `initialize`, then
 * `execute(code)` as often as wanted, concurrently if the caller likes.
 */
export class Session {
  #url
  #token
  #id = undefined
  #next = 1

  constructor(url, token) {
    this.#url = url
    this.#token = token
  }

  #headers() {
    return {
      authorization: `Bearer ${this.#token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...(this.#id === undefined ? {} : { 'mcp-session-id': this.#id }),
    }
  }

  async #post(message) {
    const res = await fetch(this.#url, {
      method: 'POST',
      headers: this.#headers(),
      body: JSON.stringify(message),
    })
    const text = await res.text()
    return { res, text }
  }

  async open() {
    const { res, text } = await this.#post({
      jsonrpc: '2.0',
      id: this.#next++,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'sluice-load', version: '0.0.1' },
      },
    })
    if (!res.ok) throw new Error(`initialize: HTTP ${res.status}: ${text.slice(0, 200)}`)
    this.#id = res.headers.get('mcp-session-id') ?? undefined
    const done = await this.#post({ jsonrpc: '2.0', method: 'notifications/initialized' })
    if (done.res.status !== 202) throw new Error(`initialized: HTTP ${done.res.status}`)
    return this
  }

  /**
   * Calls `execute_code`. Resolves `{ status, ok, code?, retryAfter? }`: `status` is the HTTP
   * status, `ok` the execution's own verdict, `code` the error code when it failed.
   */
  async execute(code) {
    const { res, text } = await this.#post({
      jsonrpc: '2.0',
      id: this.#next++,
      method: 'tools/call',
      params: { name: 'execute_code', arguments: { code } },
    })
    if (res.status !== 200) {
      let errorCode
      try {
        errorCode = JSON.parse(text).error?.data?.code
      } catch {
        errorCode = undefined
      }
      return {
        status: res.status,
        ok: false,
        code: errorCode ?? `HTTP_${res.status}`,
        retryAfter: res.headers.get('retry-after'),
      }
    }
    const message = messageOf(res.headers.get('content-type'), text)
    if (message.error) return { status: 200, ok: false, code: `RPC_${message.error.code}` }
    const result = message.result?.structuredContent
    if (result?.ok === true) return { status: 200, ok: true, result: result.result }
    return { status: 200, ok: false, code: result?.error?.code ?? 'NO_RESULT' }
  }

  async close() {
    if (this.#id === undefined) return
    await fetch(this.#url, { method: 'DELETE', headers: this.#headers() }).catch(() => undefined)
  }
}

/**
 * Where the gateway's resident set is, from /proc/PID/smaps (Linux), in MiB: `wasmMiB`, the
 * sandboxes' linear memories (a read-write mapping in front of a reservation of 1 GiB or more,
 * V8's guard region); `mallocMiB`, glibc's heap and its 64 MiB arenas; `fileMiB`, mapped files
 * (code); `anonMiB`, the rest (V8 heaps, thread stacks). About 5 ms for the soak's gateway.
 */
export function memoryMap(pid) {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8')
  const maps = []
  let current
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (m !== null) {
      current = { lo: BigInt(`0x${m[1]}`), hi: BigInt(`0x${m[2]}`), perm: m[3], name: m[4], kib: 0 }
      maps.push(current)
    } else if (current !== undefined && line.startsWith('Rss:')) {
      current.kib = Number(line.split(/\s+/)[1])
    }
  }
  const ARENA = 64n << 20n
  const GIB = 1n << 30n
  const kib = { wasm: 0, malloc: 0, file: 0, anon: 0 }
  maps.forEach((m, i) => {
    if (m.kib === 0) return
    const next = maps[i + 1]
    const reservedAfter =
      next !== undefined && next.lo === m.hi && next.perm.startsWith('---') ? next.hi - next.lo : 0n
    if (m.name === '[heap]') kib.malloc += m.kib
    else if (m.name !== '' && !m.name.startsWith('[')) kib.file += m.kib
    else if (m.name !== '') kib.anon += m.kib
    else if (m.lo % ARENA === 0n && m.hi - m.lo + reservedAfter === ARENA) kib.malloc += m.kib
    else if (reservedAfter >= GIB) kib.wasm += m.kib
    else kib.anon += m.kib
  })
  const mib = (k) => Math.round((k / 1024) * 10) / 10
  return {
    wasmMiB: mib(kib.wasm),
    mallocMiB: mib(kib.malloc),
    fileMiB: mib(kib.file),
    anonMiB: mib(kib.anon),
  }
}
