/**
 * Issue 15, item 6: two upstream tools whose sanitised names collide (`get-sum` and `get_sum` on
 * one server) stop the start and `sluice lock` with a config error naming both; before, both
 * were dropped quietly and the server started.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { identifierCollisions } from '../../src/bindings/index.js'
import { runCli } from '../helpers/cli.js'
import { FIXTURES, testRuntime } from '../helpers/runtime.js'

const COLLIDE = join(FIXTURES, 'servers/collide.mjs')
let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-collide-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('identifierCollisions', () => {
  it('groups distinct names by identifier and ignores exact duplicates and invalid names', () => {
    expect(identifierCollisions(['get-sum', 'get_sum', 'get.sum', 'ping', 'ping', 'a b'])).toEqual([
      { ident: 'get_sum', names: ['get-sum', 'get.sum', 'get_sum'] },
    ])
    expect(identifierCollisions(['get-sum', 'ping'])).toEqual([])
  })
})

describe('a server whose tools collide after sanitising', () => {
  it('stops the start with a config error naming both tools', async () => {
    const start = testRuntime({
      config: { servers: { calc: { command: process.execPath, args: [COLLIDE] } } },
    })
    await expect(start).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(
        'servers.calc: tools "get-sum" and "get_sum" of server calc both become tools.calc.get_sum; sluice cannot tell which one tools.calc.get_sum means',
      ),
    })
  })

  it('starts when the same server has no collision (the fixture differs by one tool only)', async () => {
    // The recording fixture has `get-sum` alone: the check does not refuse a lone dashed name.
    const rt = await testRuntime({ recording: true })
    try {
      expect(rt.engine.catalog.servers().get('rec')?.collisions).toEqual([])
      expect(rt.engine.listTools(rt.principal()).map((t) => t.ident)).toContain('get_sum')
    } finally {
      await rt.close()
    }
  })

  it('stops sluice lock with exit 2, names both tools and writes no lock', async () => {
    const config = join(dir, 'sluice.yaml')
    writeFileSync(
      config,
      `servers:\n  calc:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(COLLIDE)}]\n`,
    )
    const out = await runCli(['lock', '--config', config])
    expect(out.stderr).toBe(
      `sluice lock: CONFIG_INVALID: invalid config ${config}: servers.calc: tools "get-sum" and "get_sum" of server calc both become tools.calc.get_sum; a lock cannot pin both (rename one upstream, or remove the server)\n`,
    )
    expect(out.code).toBe(2)
    expect(existsSync(join(dir, 'sluice.lock.json'))).toBe(false)
  })
})
