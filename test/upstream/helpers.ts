/**
 * Shared test helpers for upstream and registry tests: fixture paths, temp dirs and a child
 * process running an HTTP MCP server on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { ServerConfig } from '../../src/config/index.js'

export const ROOT = resolve(import.meta.dirname, '../..')
export const BIN = join(ROOT, 'node_modules/.bin')
export const FIXTURES = join(ROOT, 'test/fixtures/servers')
export const clientInfo = { name: 'sluice-test', version: '0.0.0' }

/** A stdio server config running one of our fixtures with node. */
export function fixture(name: string, env: Record<string, string> = {}): ServerConfig {
  return { command: process.execPath, args: [join(FIXTURES, `${name}.mjs`)], env }
}

/** A stdio server config running a package bin from node_modules/.bin with node. */
export function bin(
  name: string,
  args: string[] = [],
  env: Record<string, string> = {},
): ServerConfig {
  return { command: process.execPath, args: [join(BIN, name), ...args], env }
}

export function tempDir(prefix = 'sluice-upstream-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        resolvePort(typeof address === 'object' && address !== null ? address.port : 0),
      )
    })
  })
}

export interface RunningServer {
  url: string
  child: ChildProcess
  stop(): Promise<void>
}

/** Waits until `url` answers any HTTP response, or fails after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await fetch(url, { method: 'GET', signal: AbortSignal.timeout(1_000) })
      return
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not come up within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    child.kill('SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))])
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

/** Starts `mcp-server-everything streamableHttp` on a free port and waits for it. */
export async function startEverythingHttp(): Promise<RunningServer> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(BIN, 'mcp-server-everything'), 'streamableHttp'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  const url = `http://127.0.0.1:${port}/mcp`
  const stop = stopper(child)
  try {
    await waitForHttp(url)
  } catch (error) {
    await stop()
    throw error
  }
  return { url, child, stop }
}

/** Starts the http-recorder fixture and returns its URL once it prints LISTENING. */
export async function startRecorder(env: Record<string, string> = {}): Promise<RunningServer> {
  const child = spawn(process.execPath, [join(FIXTURES, 'http-recorder.mjs')], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const stop = stopper(child)
  const port = await new Promise<number>((resolvePort, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('http-recorder did not start')), 15_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      const match = /LISTENING (\d+)/.exec(out)
      if (match) {
        clearTimeout(timer)
        resolvePort(Number(match[1]))
      }
    })
    child.once('exit', () => reject(new Error('http-recorder exited')))
  }).catch(async (error: unknown) => {
    await stop()
    throw error
  })
  return { url: `http://127.0.0.1:${port}/mcp`, child, stop }
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The text of the first content block of a tool result. */
export function textOf(result: {
  content: ReadonlyArray<{ type: string; [key: string]: unknown }>
}): string {
  const block = result.content[0]
  return block !== undefined && typeof block.text === 'string' ? block.text : ''
}
