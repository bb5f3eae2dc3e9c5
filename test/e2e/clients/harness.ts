/**
 * What every client test needs: a real `sluice serve` (the built CLI, on 127.0.0.1 with a port the
 * OS picked) trusting the test IdP (test/helpers/idp.ts, also on 127.0.0.1), a bearer token it
 * minted, and the command that starts `sluice stdio` on the same config. The only upstream is `server-everything` over stdio;
 * the policy allows its `echo` and nothing else, so a client that reaches the upstream proves the
 * whole path (client → gateway → sandbox → host dispatcher → policy → upstream and back).
 *
 * Why the test IdP and not `sluice token`'s dev issuer: a client that does OAuth discovery even
 * with a bearer header (mcp-remote does, at start) follows the gateway's RFC 9728 metadata to the
 * issuer, and the dev issuer's `https://sluice.invalid/dev-issuer` would be a DNS lookup off this
 * machine. The test IdP keeps every request on loopback. It serves its JWKS from the test's own
 * process, so a test must not block its event loop (no spawnSync) while the gateway verifies a
 * token: the JWKS fetch would time out and the client would get a 401.
 *
 * Everything lives in one temp folder (config, policy, audit), removed by `close()`: nothing is
 * written under the repository.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import { stringify } from 'yaml'
import { startIdp, type Idp } from '../../helpers/idp.js'
import { startRedis, type RedisServer } from '../../helpers/redis.js'
import { startRoundRobin, type RoundRobin } from '../../helpers/round-robin.js'
import { ROOT, SERVERS } from '../../helpers/runtime.js'

export const MAIN = join(ROOT, 'dist', 'src', 'main.js')

/** The audience the tokens carry and the gateway expects. */
export const AUDIENCE = 'http://127.0.0.1:8787/mcp'

/** A bearer token of `sub` from `idp` for the gateway, valid for an hour. */
export function mintToken(idp: Idp, sub: string): Promise<string> {
  return idp.mint({ sub, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })
}

/** The code every client sends, and what sluice answers for it. */
export const CODE = "return await tools.everything.echo({ message: 'hi' })"
/** The text block of that result (the result as JSON, no logs). */
export const RESULT_TEXT = '"Echo: hi"'
/** `structuredContent` of that result; `ms` is a duration, so only its type is fixed. */
export const RESULT = {
  ok: true,
  result: 'Echo: hi',
  logs: [],
  calls: [{ tool: 'everything.echo', ok: true, ms: expect.any(Number), decision: 'allow' }],
}

export interface StdioCommand {
  command: string
  args: string[]
}

export interface Sluice {
  /** The temp folder; removed by `close()`. */
  dir: string
  configFile: string
  /** `http://127.0.0.1:<port>/mcp` */
  url: string
  /** The test IdP's issuer URL (on 127.0.0.1). */
  issuer: string
  /** A bearer token for `alice`, valid for an hour. */
  token: string
  /** How a client starts `sluice stdio` on the same config (principal: identity.local). */
  stdio: StdioCommand
  close(): Promise<void>
}

/** The approval rule of the serve tests on the recording fixture: payments over 1000 ask a human. */
export const BIG_PAYMENTS_RULE = {
  id: 'big-payments',
  effect: 'approve',
  description: 'payments over 1000 need a human',
  when: 'tool.server == "rec" && tool.name == "pay" && args.amount > 1000',
}

/** What {@link writeServeConfig} writes beside the identity block every serve test shares. */
export interface ServeConfigOptions {
  servers: Record<string, unknown>
  /** The policy's rules (written to `policy.yaml` beside the config). */
  rules: unknown[]
  /** The folder to write into; a new temp folder when absent. */
  dir?: string
  /** The principal `sluice stdio` / `run` use when no token is given. */
  local?: { sub: string; scopes: string[] }
  /** Further top-level config blocks (`store`, `audit`, `gateway`, …). */
  extra?: Record<string, unknown>
}

/** Writes a config that trusts `idp` (and its policy) for `sluice serve`. */
export function writeServeConfig(
  idp: Idp,
  options: ServeConfigOptions,
): { dir: string; configFile: string } {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sluice-serve-'))
  writeFileSync(join(dir, 'policy.yaml'), stringify({ rules: options.rules }))
  const configFile = join(dir, 'sluice.yaml')
  writeFileSync(
    configFile,
    stringify({
      servers: options.servers,
      policies: ['policy.yaml'],
      identity: {
        audience: AUDIENCE,
        issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
        ...(options.local ? { local: options.local } : {}),
      },
      // One worker is plenty for one client at a time, and the machine is shared.
      sandbox: { workers: 1, prewarm: 1 },
      ...options.extra,
    }),
  )
  return { dir, configFile }
}

/** Writes the clients' config (everything's echo, allowed) into a new temp folder. */
export function writeConfig(idp: Idp): { dir: string; configFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-clients-'))
  return writeServeConfig(idp, {
    dir,
    servers: { everything: { command: process.execPath, args: [SERVERS.everything, 'stdio'] } },
    rules: [
      { id: 'echo', effect: 'allow', when: 'tool.server == "everything" && tool.name == "echo"' },
    ],
    local: { sub: 'local-user', scopes: [] },
    extra: { audit: { file: join(dir, 'audit.jsonl') } },
  })
}

/** Waits for serve's "listening on URL" line on stderr; rejects if it exits first. */
function listening(child: ChildProcess, output: { stderr: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      output.stderr += chunk.toString('utf8')
      const m = /sluice gateway listening on (\S+)/.exec(output.stderr)
      if (m) resolve(m[1]!)
    })
    child.once('exit', (code) =>
      reject(new Error(`sluice serve exited with ${String(code)}:\n${output.stderr}`)),
    )
  })
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await exited
}

/** One `sluice serve` process on 127.0.0.1 with a port the OS picked. */
export interface ServeProcess {
  url: string
  child: ChildProcess
  /** What it wrote to stderr so far. */
  output: { stderr: string }
}

/**
 * Starts `sluice serve --config configFile` (plus `args`, e.g. `--insecure-dev`); resolves once it
 * listens. Stop it with `stopChild`.
 */
export async function startServe(configFile: string, args: string[] = []): Promise<ServeProcess> {
  const output = { stderr: '' }
  const child = spawn(
    process.execPath,
    [MAIN, 'serve', '--config', configFile, '--host', '127.0.0.1', '--port', '0', ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  try {
    return { url: await listening(child, output), child, output }
  } catch (e) {
    await stopChild(child)
    throw e
  }
}

/** Starts `sluice serve` on 127.0.0.1 with a free port. Always `close()` it. */
export async function startSluice(): Promise<Sluice> {
  const idp = await startIdp()
  const { dir, configFile } = writeConfig(idp)
  let serve: ServeProcess | undefined
  const close = async (): Promise<void> => {
    if (serve !== undefined) await stopChild(serve.child)
    await idp.close()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    serve = await startServe(configFile)
    const url = serve.url
    const token = await mintToken(idp, 'alice')
    return {
      dir,
      configFile,
      url,
      issuer: idp.issuer,
      token,
      stdio: { command: process.execPath, args: [MAIN, 'stdio', '--config', configFile] },
      close,
    }
  } catch (e) {
    await close()
    throw e
  }
}

/** The tool names a client listed, sorted (clients differ in the order they keep). */
export function names(tools: ReadonlyArray<{ name: string }>): string[] {
  return tools.map((t) => t.name).sort()
}

/** The lines of a JSON Lines file (e.g. what the recording fixture wrote); none when it is absent. */
export function readJsonl<T = Record<string, unknown>>(file: string): T[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as T)
    : []
}

/** What a serve test on a shared store starts with: the test IdP, a Redis, a temp folder. */
export interface RedisServeEnv {
  idp: Idp
  redis: RedisServer
  /** A new temp folder for the config, policy and fixture logs; removed by `close()`. */
  dir: string
  /** A bearer token of `sub`, valid for an hour. */
  token(sub: string): Promise<string>
  close(): Promise<void>
}

/** Starts the test IdP and a Redis, and makes a temp folder named `prefix…`. Always `close()` it. */
export async function startRedisServeEnv(prefix: string): Promise<RedisServeEnv> {
  const idp = await startIdp()
  let redis: RedisServer
  try {
    redis = await startRedis()
  } catch (e) {
    await idp.close()
    throw e
  }
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    idp,
    redis,
    dir,
    token: (sub) => mintToken(idp, sub),
    close: async () => {
      await redis.close()
      await idp.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** `sluice serve` replicas on one config behind a round-robin proxy (no sticky routing). */
export interface Replicas {
  /** In the proxy's backend order. */
  replicas: ServeProcess[]
  proxy: RoundRobin
  close(): Promise<void>
}

/** Starts `count` replicas of `sluice serve --config configFile` and the proxy in front of them. */
export async function startReplicas(configFile: string, count = 2): Promise<Replicas> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startServe(configFile)),
  )
  const replicas = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const stop = () => Promise.all(replicas.map((r) => stopChild(r.child)))
  const failed = started.find((r) => r.status === 'rejected')
  if (failed !== undefined) {
    await stop()
    throw failed.reason
  }
  let proxy: RoundRobin
  try {
    proxy = await startRoundRobin(replicas.map((r) => r.url))
  } catch (e) {
    await stop()
    throw e
  }
  return {
    replicas,
    proxy,
    close: async () => {
      await proxy.close()
      await stop()
    },
  }
}
