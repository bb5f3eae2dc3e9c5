/**
 * TP-02, the rug pull, end to end: a real MCP server (fixture) is locked, then changes a tool's
 * definition and sends tools/list_changed; re-listing and reconciling quarantines that tool.
 * Also shows how `sluice lock` composes the two leaves (snapshotServer below).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import type { ServerConfig } from '../../src/config/index.js'
import {
  createLock,
  hashDefinition,
  readLock,
  reconcile,
  writeLock,
  type ServerSnapshot,
} from '../../src/registry/index.js'
import { Upstream } from '../../src/upstream/index.js'
import { clientInfo, eventually, fixture, tempDir } from '../upstream/helpers.js'

/** What the CLI does per server for `sluice lock`: list, then take serverInfo from health(). */
async function snapshotServer(upstream: Upstream, config: ServerConfig): Promise<ServerSnapshot> {
  const tools = await upstream.listTools()
  return { config, serverInfo: upstream.health().serverInfo, tools }
}

const dir = tempDir('sluice-rugpull-')
afterAll(() => dir.remove())

describe('rug pull (TP-02)', () => {
  it('quarantines a tool whose definition changed after it was pinned', async () => {
    let changed = 0
    const config = fixture('rugpull')
    const upstream = new Upstream('weather', config, {
      callTimeoutMs: 10_000,
      clientInfo,
      onToolsChanged: () => changed++,
    })
    try {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519')
      const lockFile = join(dir.path, 'sluice.lock.json')
      await writeLock(lockFile, createLock({ weather: await snapshotServer(upstream, config) }), {
        signingKey: privateKey,
      })
      const lock = await readLock(lockFile, { publicKey })
      expect(lock.servers.weather!.server).toEqual({ name: 'fixture-rugpull', version: '1.0.0' })

      const before = reconcile(lock.servers.weather, await upstream.listTools(), {
        allowUnpinned: false,
      })
      expect(before.exposed.map((e) => e.definition.name)).toEqual(['get_weather', 'mutate'])
      expect(before.quarantined).toEqual([])

      await upstream.callTool('mutate', {})
      await eventually(() => changed === 1)
      const live = await upstream.listTools()
      const after = reconcile(lock.servers.weather, live, { allowUnpinned: true })
      expect(after.exposed.map((e) => e.definition.name)).toEqual(['mutate'])
      expect(after.quarantined).toEqual([
        {
          name: 'get_weather',
          pinnedHash: lock.servers.weather!.tools.get_weather!.hash,
          liveHash: hashDefinition(live.find((t) => t.name === 'get_weather')!),
          reason: 'changed',
        },
      ])
    } finally {
      await upstream.close()
    }
  })

  it('quarantines it too when the server comes back changed after a restart (no notification)', async () => {
    const trigger = join(dir.path, 'trigger')
    const config = fixture('rugpull', { RUGPULL_TRIGGER: trigger })
    const first = new Upstream('weather', config, { callTimeoutMs: 10_000, clientInfo })
    let lock: ReturnType<typeof createLock>
    try {
      lock = createLock({ weather: await snapshotServer(first, config) })
    } finally {
      await first.close()
    }
    writeFileSync(trigger, '')
    const second = new Upstream('weather', config, { callTimeoutMs: 10_000, clientInfo })
    try {
      const result = reconcile(lock.servers.weather, await second.listTools(), {
        allowUnpinned: false,
      })
      expect(result.quarantined.map((q) => q.name)).toEqual(['get_weather'])
    } finally {
      await second.close()
    }
  })
})
