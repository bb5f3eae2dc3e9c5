/**
 * A real `redis-server` for the bench, as test/helpers/redis.ts starts one for the tests: on
 * 127.0.0.1 and a free port, in memory only (no RDB, no AOF). `redisMissing()` says why there
 * is none, so a case can skip its Redis rows with the reason.
 *
 * @module
 */
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'

/** Why Redis rows cannot run here (`redis-server` not found or failing), else undefined. */
export function redisMissing() {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (probe.error?.code === 'ENOENT')
    return 'no redis-server on PATH (install the redis-server package)'
  if (probe.status !== 0)
    return `redis-server --version failed: ${probe.error?.message ?? probe.stderr.trim()}`
  return undefined
}

/** `redis-server --version`'s version, e.g. `7.0.15`. */
export function redisVersion() {
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? ''
  return /v=(\S+)/.exec(out)?.[1] ?? 'unknown'
}

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts redis-server; resolves `{ url, pid, close() }` once it accepts connections. */
export async function startRedis() {
  const port = await freePort()
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  // 'error' without 'exit' when it could not be spawned at all.
  const exited = new Promise((resolve) => {
    child.once('exit', resolve)
    child.once('error', resolve)
  })
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  try {
    await new Promise((resolve, reject) => {
      let out = ''
      const onData = (chunk) => {
        out += chunk.toString('utf8')
        if (out.includes('Ready to accept connections')) {
          child.stdout.off('data', onData)
          child.stdout.resume()
          resolve()
        }
      }
      child.stdout.on('data', onData)
      child.stderr.resume()
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${out}`)))
    })
  } catch (error) {
    await close()
    throw error
  }
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid, close }
}
