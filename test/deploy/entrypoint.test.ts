/**
 * The image's entrypoint starts the gateway from the Kubernetes layout: the runtime stage's
 * files (as the Dockerfile's COPY lines place them) under a temporary root, the ConfigMap,
 * the identity Secret and the volumes at the Deployment's mount paths, the container's command
 * and args as the Deployment runs them (only the bind moves to 127.0.0.1:0). Everything but the
 * writable volumes stands in for the read-only root: it is made read-only and must come out
 * unchanged. The probes answer, a caller with a token of the configured issuer runs code, the
 * audit lands on the audit volume and verifies, and SIGTERM ends the process with 0.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import {
  chmodSync,
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, posix, relative } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadBundle } from '../../scripts/deploy/bundle.js'
import { imageOf, type ImageSpec } from '../../scripts/deploy/dockerfile.js'
import { configOf, placementOf, workload, type Workload } from '../../scripts/deploy/kubernetes.js'
import { connect, execute, readAudit } from '../e2e/helpers.js'
import { ROOT } from '../helpers/runtime.js'

const image: ImageSpec = imageOf(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const w: Workload = workload(loadBundle(join(ROOT, 'deploy', 'kubernetes')).bundle, image)
const { config } = configOf(w)
const WRITABLE = (w.container.volumeMounts ?? []).filter(
  (m) => placementOf(w, m.mountPath)?.volume.emptyDir !== undefined,
)

let root: string
let server: ChildProcess
let exited: Promise<number | null>
let url: string
let stderr = ''
let signingKey: CryptoKey
const clients: Client[] = []

/** Where a container path lands under the temporary root. */
const host = (path: string): string => join(root, path)

/** Container paths inside the config (absolute, under a mount), moved under the root. */
function remapConfig(text: string): string {
  const move = (s: string): string => {
    const path = s.startsWith('file:') ? s.slice(5) : s
    if (!path.startsWith('/') || placementOf(w, path) === undefined) return s
    return s.startsWith('file:') ? `file:${host(path)}` : host(path)
  }
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? move(v)
      : Array.isArray(v)
        ? v.map(walk)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v
  return stringify(walk(parse(text)))
}

/** The runtime stage's COPY lines, from the repository (a stage's WORKDIR is the repository). */
function layOutImage(): void {
  for (const copy of image.copies) {
    const dest = posix.resolve(image.workdir, copy.dest)
    for (const source of copy.sources) {
      const fromRepo =
        copy.from === undefined
          ? source
          : posix.relative(image.stageWorkdirs[copy.from] ?? '/', source)
      const target = copy.dest.endsWith('/') ? join(host(dest), basename(source)) : host(dest)
      mkdirSync(dirname(target), { recursive: true })
      // The repository's node_modules holds dev dependencies too; the Dockerfile check makes
      // sure the image's holds production ones only. A link keeps the test fast.
      if (basename(source) === 'node_modules') symlinkSync(join(ROOT, fromRepo), target)
      else cpSync(join(ROOT, fromRepo), target, { recursive: true })
    }
  }
}

/** The Deployment's volumes at their mount paths: ConfigMap files, the JWKS, empty folders. */
async function layOutVolumes(): Promise<void> {
  for (const mount of w.container.volumeMounts ?? []) {
    mkdirSync(host(mount.mountPath), { recursive: true })
    const ref = placementOf(w, mount.mountPath)?.volume.configMap
    if (ref === undefined) continue
    for (const [key, text] of Object.entries(w.configMaps.get(ref.name ?? '') ?? {})) {
      const file = join(host(mount.mountPath), key)
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, key === basename(flagOf('config')) ? remapConfig(text) : text)
    }
  }
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  signingKey = privateKey
  const jwk = { ...(await exportJWK(publicKey)), kid: 'deploy-test', alg: 'ES256', use: 'sig' }
  const jwksFile = config!.identity!.issuers[0]!.jwksFile!
  writeFileSync(host(jwksFile), JSON.stringify({ keys: [jwk] }))
}

function flagOf(name: string): string {
  const i = w.args.indexOf(`--${name}`)
  return w.args[i + 1]!
}

/** Sets the mode of every folder and file under `dir` (links are left alone). */
function chmodTree(dir: string, dirMode: number, fileMode: number): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = lstatSync(p)
    if (st.isDirectory()) chmodTree(p, dirMode, fileMode)
    else if (st.isFile()) chmodSync(p, fileMode)
  }
  chmodSync(dir, dirMode)
}

/** Every path under the root outside the writable volumes, with its size and mtime. */
function snapshot(): string[] {
  const writable = WRITABLE.map((m) => host(m.mountPath))
  const out: string[] = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name)
      if (writable.includes(p)) continue
      const st = lstatSync(p)
      out.push(`${relative(root, p)} ${st.size} ${st.mtimeMs}`)
      if (st.isDirectory()) walk(p)
    }
  }
  walk(root)
  return out
}

async function token(): Promise<string> {
  const identity = config!.identity!
  return new SignJWT({ scope: 'deploy:test' })
    .setProtectedHeader({ alg: 'ES256', kid: 'deploy-test' })
    .setIssuer(identity.issuers[0]!.issuer)
    .setAudience(identity.audience)
    .setSubject('deploy-test')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(signingKey)
}

let before: string[]

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sluice-image-'))
  layOutImage()
  await layOutVolumes()
  // The read-only root: everything but the writable volumes.
  const writable = new Set(WRITABLE.map((m) => host(m.mountPath)))
  for (const name of readdirSync(root)) {
    const p = join(root, name)
    if (!writable.has(p)) chmodTree(p, 0o555, 0o444)
  }
  before = snapshot()

  const [command, ...entry] = image.entrypoint ?? []
  if (command !== 'node') throw new Error(`ENTRYPOINT runs ${String(command)}, not node`)
  const args = [...entry, ...w.args].map((a, i, all) =>
    all[i - 1] === '--host'
      ? '127.0.0.1'
      : all[i - 1] === '--port'
        ? '0'
        : a.startsWith('/')
          ? host(a)
          : a,
  )
  const tmp = placementOf(w, '/tmp') === undefined ? {} : { TMPDIR: host('/tmp') }
  server = spawn(process.execPath, args, {
    cwd: host(image.workdir),
    env: { PATH: process.env.PATH ?? '', ...image.env, ...tmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)))
  url = await new Promise<string>((resolve, reject) => {
    server.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
      const m = /sluice gateway listening on (\S+)/.exec(stderr)
      if (m) resolve(m[1]!)
    })
    void exited.then((code) =>
      reject(new Error(`sluice serve exited with ${String(code)}:\n${stderr}`)),
    )
  })
})

afterAll(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined)
  if (server !== undefined && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL')
    await exited
  }
  chmodTree(root, 0o755, 0o644)
  rmSync(root, { recursive: true, force: true })
})

describe('the image entrypoint on the Kubernetes layout', () => {
  it('answers the liveness and readiness probes', async () => {
    const healthz = await fetch(new URL('/healthz', url))
    expect({ status: healthz.status, body: await healthz.json() }).toEqual({
      status: 200,
      body: { status: 'ok' },
    })
    const readyz = await fetch(new URL('/readyz', url))
    expect({ status: readyz.status, body: await readyz.json() }).toMatchObject({
      status: 200,
      body: { status: 'ready', config: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
    })
  })

  it('runs code for a caller with a token of the configured issuer', async () => {
    const client = await connect(url, { token: await token() })
    clients.push(client)
    expect(await execute(client, 'return 6 * 7')).toMatchObject({ ok: true, result: 42 })
  })

  it('on SIGTERM exits 0, with the audit on the audit volume and nothing written elsewhere', async () => {
    for (const c of clients.splice(0)) await c.close()
    server.kill('SIGTERM')
    expect(await exited).toBe(0)
    const audit = host(config!.audit!.file)
    expect(
      readAudit(audit)
        .filter((r) => r.type === 'execution.end')
        .map((r) => r.principal?.sub),
    ).toEqual(['deploy-test'])
    const verify = spawnSync(
      process.execPath,
      [join(ROOT, 'dist', 'src', 'main.js'), 'audit', 'verify', audit],
      { encoding: 'utf8' },
    )
    expect(verify.status, verify.stderr + verify.stdout).toBe(0)
    expect(snapshot()).toEqual(before)
  })
})
