/**
 * `sluice lock` pins the live tool definitions of every configured server (optionally signed);
 * `sluice bindings` generates TypeScript declarations from the lock, with no live server.
 *
 * @module
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { renderBindingsFile, sanitizeIdentifier } from '../bindings/index.js'
import { loadConfig, type Config } from '../config/index.js'
import { SluiceError } from '../errors.js'
import { createLock, readLock, writeLock, type LockFile } from '../registry/index.js'
import type { ToolDefinition } from '../types.js'
import { UpstreamSet } from '../upstream/index.js'
import { usage, type Command } from './index.js'

function lockPath(config: Config, out: string | undefined): string {
  if (out) return resolve(out)
  if (config.lock) return config.lock.file
  return join(config.baseDir, 'sluice.lock.json')
}

export const lockCommand: Command = {
  name: 'lock',
  summary: 'Pin the live tool definitions of every configured server into a lock file',
  usage: 'sluice lock [--config FILE] [--out FILE] [--sign PRIVATE_JWK_FILE]',
  options: {
    config: { type: 'string', short: 'c' },
    out: { type: 'string', short: 'o' },
    sign: { type: 'string' },
  },
  async run({ values }) {
    const config = loadConfig(values.config as string | undefined)
    const names = Object.keys(config.servers)
    if (names.length === 0) throw usage('the config has no servers to lock')
    const upstreams = new UpstreamSet(config.servers, { callTimeoutMs: config.limits.callTimeoutMs })
    try {
      const snapshot: Parameters<typeof createLock>[0] = {}
      for (const name of names) {
        const upstream = upstreams.get(name)!
        let tools: ToolDefinition[]
        try {
          tools = await upstream.listTools()
        } catch (cause) {
          throw new SluiceError('UPSTREAM_UNAVAILABLE', `server ${name}: cannot list tools: ${(cause as Error).message}`)
        }
        snapshot[name] = { config: config.servers[name]!, serverInfo: upstream.health().serverInfo, tools }
      }
      const lock = createLock(snapshot)
      const path = lockPath(config, values.out as string | undefined)
      await writeLock(path, lock, values.sign ? { signingKeyFile: resolve(values.sign as string) } : {})
      const count = Object.values(lock.servers).reduce((n, s) => n + Object.keys(s.tools).length, 0)
      process.stderr.write(`pinned ${count} tools of ${names.length} servers in ${path}${values.sign ? ' (signed)' : ''}\n`)
      return 0
    } finally {
      await upstreams.close()
    }
  },
}

/** Renders one bindings file per server from the lock: `<out>/<server>.d.ts`. */
export function renderBindings(lock: LockFile): Map<string, string> {
  const files = new Map<string, string>()
  for (const [server, entry] of Object.entries(lock.servers).sort(([a], [b]) => a.localeCompare(b))) {
    const tools = Object.values(entry.tools)
      .map((t) => t.definition)
      .sort((a, b) => a.name.localeCompare(b.name))
      .flatMap((definition) => {
        const ident = sanitizeIdentifier(definition.name)
        return ident === undefined ? [] : [{ server, name: definition.name, ident, definition }]
      })
    const rendered = renderBindingsFile(tools, {
      header: `Tools of server "${server}" (${entry.server.name} ${entry.server.version}), pinned in the lock file.`,
    })
    files.set(`${server}.d.ts`, rendered.text)
    files.set(`${server}.coverage.json`, `${JSON.stringify(rendered.coverage, null, 2)}\n`)
  }
  return files
}

export const bindingsCommand: Command = {
  name: 'bindings',
  summary: 'Generate TypeScript bindings from the lock file (no live server needed)',
  usage: 'sluice bindings [--config FILE] [--lock FILE] [--out DIR] [--check]',
  options: {
    config: { type: 'string', short: 'c' },
    lock: { type: 'string' },
    out: { type: 'string', short: 'o', default: 'tool-bindings' },
    check: { type: 'boolean' },
  },
  async run({ values }) {
    const config = loadConfig(values.config as string | undefined)
    const path = values.lock ? resolve(values.lock as string) : config.lock?.file
    if (!path) throw usage('no lock file: pass --lock FILE or set lock.file in the config (create one with `sluice lock`)')
    const publicKeyFile = config.lock?.publicKeyFile
    const lock = await readLock(path, publicKeyFile ? { publicKeyFile } : {})
    const out = resolve(values.out as string)
    const files = renderBindings(lock)
    const stale: string[] = []
    for (const [name, text] of files) {
      const target = join(out, name)
      if (values.check) {
        const current = await readFile(target, 'utf8').catch(() => undefined)
        if (current !== text) stale.push(target)
      } else {
        await mkdir(dirname(target), { recursive: true })
        await writeFile(target, text)
      }
    }
    if (values.check) {
      if (stale.length > 0) {
        process.stderr.write(`bindings are stale; run \`sluice bindings\`:\n  ${stale.join('\n  ')}\n`)
        return 1
      }
      process.stderr.write(`bindings in ${out} match ${path}\n`)
      return 0
    }
    process.stderr.write(`wrote ${files.size} files to ${out}\n`)
    return 0
  },
}
