/**
 * Issue 15, item 5: the reference servers imported from the fixture registry run from the
 * installed npm packages, with no network. `npx -y pkg@X.Y.Z` finds the exact version in this
 * project's node_modules; HOME points at an .npmrc that forbids the network (offline, and a
 * registry address nothing listens on), so any download would fail the lock.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LockFile } from '../../src/registry/index.js'
import { runCli } from '../helpers/cli.js'
// @ts-expect-error a plain .mjs fixture without types
import { startRegistry } from '../fixtures/registry/serve.mjs'

let dir: string
let registry: { url: string; close(): Promise<void> }
let home: string | undefined
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-registry-offline-'))
  writeFileSync(join(dir, '.npmrc'), 'offline=true\nregistry=http://127.0.0.1:9/\n')
  home = process.env.HOME
  process.env.HOME = dir
  registry = await startRegistry()
})
afterAll(async () => {
  process.env.HOME = home
  await registry?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('imported reference servers', () => {
  it('are pinned by sluice lock from the installed packages, offline', async () => {
    const config = join(dir, 'sluice.yaml')
    writeFileSync(
      config,
      [
        'registry:',
        `  url: ${registry.url}`,
        '  servers:',
        '    - io.github.modelcontextprotocol/server-memory',
        '    - io.github.modelcontextprotocol/server-everything',
        '  variables:',
        `    io.github.modelcontextprotocol/server-memory: { MEMORY_FILE_PATH: ${JSON.stringify(join(dir, 'memory.jsonl'))} }`,
        'lock: { file: sluice.lock.json }',
        '',
      ].join('\n'),
    )
    expect((await runCli(['registry', 'sync', '--config', config])).code).toBe(0)
    const locked = await runCli(['lock', '--config', config])
    expect(locked.stderr).toMatch(/^pinned \d+ tools of 2 servers in /)
    expect(locked.code).toBe(0)
    const lock = JSON.parse(readFileSync(join(dir, 'sluice.lock.json'), 'utf8')) as LockFile
    expect(lock.servers['server-memory']?.source).toEqual({
      type: 'stdio',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-memory@2026.8.31'],
    })
    expect(Object.keys(lock.servers['server-memory']!.tools)).toContain('read_graph')
    expect(Object.keys(lock.servers['server-everything']!.tools)).toContain('get-sum')
  })
})
