/**
 * What a reload may change, what it reads, and how it reports: `needsRestart`, `loadChecked` and
 * `ConfigReloader` without a gateway around them (the end-to-end flow is test/e2e/serve-reload).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigReloader, loadChecked, needsRestart } from '../../src/cli/reload.js'
import { parseConfig } from '../../src/config/index.js'
import { SluiceError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-reload-unit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function write(name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

const ALLOW = 'rules:\n  - id: all\n    effect: allow\n    when: "true"\n'

describe('needsRestart', () => {
  const base = {
    servers: { a: { command: 'node', args: ['a.js'] } },
    limits: { timeoutMs: 5000 },
  }
  const config = (extra: Record<string, unknown>) =>
    parseConfig({ ...base, ...extra }, 'sluice.yaml', dir)

  it('policies, lock, limits and shutdown reload in place', () => {
    write('p.yaml', ALLOW)
    expect(
      needsRestart(
        config({}),
        config({
          policies: ['p.yaml'],
          limits: { timeoutMs: 9000, maxConcurrentExecutions: 2 },
          shutdown: { drainMs: 1000 },
        }),
      ),
    ).toEqual([])
  })

  it('names every other section that changed, sorted', () => {
    expect(needsRestart(config({}), config({ sandbox: { workers: 3 } }))).toEqual(['sandbox'])
    expect(
      needsRestart(
        config({}),
        config({ servers: { b: { command: 'node' } }, audit: { file: 'audit.jsonl' } }),
      ),
    ).toEqual(['audit', 'servers'])
  })

  it('treats identity as a restart (its issuers shape the RFC 9728 metadata)', () => {
    write('jwks.json', '{"keys":[]}')
    const identity = (audience: string) => ({
      identity: { audience, issuers: [{ issuer: 'https://idp.test', jwksFile: 'jwks.json' }] },
    })
    expect(
      needsRestart(config(identity('https://a.test')), config(identity('https://a.test'))),
    ).toEqual([])
    expect(
      needsRestart(config(identity('https://a.test')), config(identity('https://b.test'))),
    ).toEqual(['identity'])
  })
})

describe('loadChecked', () => {
  it('reads the config and its policies, and hashes all of their bytes', async () => {
    const policy = write('hash-policy.yaml', ALLOW)
    const file = write('hash.yaml', 'policies: [hash-policy.yaml]\n')
    const first = await loadChecked(file)
    expect(first.files).toEqual([file, policy])
    expect(first.hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect((await loadChecked(file)).hash).toBe(first.hash)
    write('hash-policy.yaml', ALLOW.replace('id: all', 'id: every'))
    expect((await loadChecked(file)).hash).not.toBe(first.hash)
  })

  it('with requirePolicies, says that serve needs policies and how to do without', async () => {
    const file = write('nopolicy.yaml', 'servers: {}\n')
    await expect(loadChecked(file, { requirePolicies: true })).rejects.toThrow(
      new SluiceError(
        'CONFIG_INVALID',
        `${file}: policies: required by \`sluice serve\` (or pass --insecure-dev on loopback to allow every tool)`,
      ),
    )
    expect((await loadChecked(file)).policy).toBeDefined()
  })

  it('names a policy file that does not parse', async () => {
    write('bad-policy.yaml', 'rules:\n  - id: x\n    effect: allow\n    when: "tool.name =="\n')
    const file = write('bad.yaml', 'policies: [bad-policy.yaml]\n')
    await expect(loadChecked(file)).rejects.toThrow(
      `invalid policy ${join(dir, 'bad-policy.yaml')}`,
    )
  })
})

describe('ConfigReloader', () => {
  function reloader(apply: () => Promise<void>) {
    const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
    return {
      logs,
      create: async (file: string) =>
        new ConfigReloader({
          file,
          current: await loadChecked(file),
          requirePolicies: true,
          apply,
          log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }),
        }),
    }
  }

  it('says when nothing changed and applies nothing', async () => {
    write('same-policy.yaml', ALLOW)
    const file = write('same.yaml', 'policies: [same-policy.yaml]\n')
    let applied = 0
    const r = reloader(async () => void applied++)
    const reload = await r.create(file)
    expect(await reload.reload('SIGHUP')).toBe('unchanged')
    expect(applied).toBe(0)
    expect(r.logs.map((l) => l.msg)).toEqual(['config reload (SIGHUP): nothing changed'])
  })

  it('keeps the running config when applying fails', async () => {
    write('apply-policy.yaml', ALLOW)
    const file = write('apply.yaml', 'policies: [apply-policy.yaml]\n')
    const r = reloader(async () => {
      throw new Error('catalogue listing failed')
    })
    const reload = await r.create(file)
    const before = reload.current.hash
    write('apply-policy.yaml', ALLOW.replace('id: all', 'id: every'))
    expect(await reload.reload('test')).toBe('error')
    expect(reload.current.hash).toBe(before)
    expect(r.logs).toEqual([
      {
        level: 'error',
        msg: 'config reload (test) failed to apply; the running config stays in force',
        fields: { error: 'catalogue listing failed', activeConfig: before },
      },
    ])
  })

  it('runs reloads one after another, each on the files as they are then', async () => {
    write('serial-policy.yaml', ALLOW)
    const file = write('serial.yaml', 'policies: [serial-policy.yaml]\n')
    const order: string[] = []
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const r = reloader(async () => {
      order.push('apply')
      await gate
    })
    const reload = await r.create(file)
    write('serial-policy.yaml', ALLOW.replace('id: all', 'id: every'))
    const first = reload.reload('one')
    const second = reload.reload('two')
    release()
    expect(await first).toBe('ok')
    expect(await second).toBe('unchanged')
    expect(order).toEqual(['apply'])
    expect(r.logs.map((l) => l.msg)).toEqual([
      'config reloaded (one)',
      'config reload (two): nothing changed',
    ])
  })
})
