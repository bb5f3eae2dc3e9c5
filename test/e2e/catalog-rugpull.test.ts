/**
 * The pinned catalogue through the engine (TP-02): a tool that changes after `sluice lock` is
 * quarantined (gone from the listing, calls rejected with QUARANTINED, an audit record), a new
 * unpinned tool is hidden unless allowed, and a lock whose signature fails stops the start.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isSluiceError } from '../../src/errors.js'
import { createLock, writeLock, type LockFile } from '../../src/registry/index.js'
import { Upstream } from '../../src/upstream/index.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { clientInfo, fixture } from '../upstream/helpers.js'
import { auditRecords, waitFor } from './catalog-helpers.js'

const weather = fixture('rugpull')

/** Lists the rugpull fixture once, as `sluice lock` does, keeping only `keep` tools. */
async function pinWeather(keep?: readonly string[]): Promise<LockFile> {
  const upstream = new Upstream('weather', weather, { callTimeoutMs: 10_000, clientInfo })
  try {
    const tools = (await upstream.listTools()).filter(
      (t) => keep === undefined || keep.includes(t.name),
    )
    return createLock({
      weather: { config: weather, serverInfo: upstream.health().serverInfo, tools },
    })
  } finally {
    await upstream.close()
  }
}

const toolNames = (rt: TestRuntime) =>
  rt.engine
    .listTools(rt.principal())
    .map((t) => `${t.server}.${t.name}`)
    .sort()

/** Whether starting a runtime fails, and with what. */
async function startError(config: Record<string, unknown>): Promise<unknown> {
  try {
    const rt = await testRuntime({ config })
    await rt.close()
    return undefined
  } catch (error) {
    return error
  }
}

let dir: string
let fullLock: LockFile
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-rugpull-'))
  fullLock = await pinWeather()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('a tool that changes after the lock', () => {
  let rt: TestRuntime
  let lockFile: string
  beforeAll(async () => {
    lockFile = join(dir, 'rugpull.lock.json')
    await writeLock(lockFile, fullLock)
    rt = await testRuntime({
      config: { servers: { weather }, lock: { file: lockFile }, audit: { file: 'audit.jsonl' } },
    })
  })
  afterAll(async () => rt?.close())

  it('is exposed and callable while it matches its pin', async () => {
    expect(toolNames(rt)).toEqual(['weather.get_weather', 'weather.mutate'])
    const result = await rt.engine.execute(
      rt.principal(),
      "return await tools.weather.get_weather({ city: 'Oslo' })",
    )
    expect(result).toMatchObject({ ok: true, result: 'Sunny in Oslo' })
  })

  it('is quarantined on tools/list_changed: unlisted, undescribed, calls rejected, audited', async () => {
    const mutated = await rt.engine.execute(rt.principal(), 'return await tools.weather.mutate({})')
    expect(mutated).toMatchObject({ ok: true, result: 'mutated' })
    await waitFor(
      () => !toolNames(rt).includes('weather.get_weather'),
      'the quarantine after tools/list_changed',
    )

    expect(toolNames(rt)).toEqual(['weather.mutate'])
    // (mutate's own description names get_weather; its declaration must be gone)
    expect(rt.engine.describeExecuteCode(rt.principal())).not.toMatch(
      /get_weather\(args|Weather_GetWeatherInput/,
    )
    const search = rt.engine.searchTools(rt.principal(), 'weather city')
    expect(search.matches).not.toContainEqual(
      expect.objectContaining({ tool: 'weather.get_weather' }),
    )
    expect(search.more).not.toContain('tools.weather.get_weather')
    const state = rt.engine.catalog.servers().get('weather')
    expect(state?.quarantined).toEqual([
      expect.objectContaining({
        server: 'weather',
        name: 'get_weather',
        pinnedHash: fullLock.servers.weather!.tools.get_weather!.hash,
      }),
    ])
    expect(rt.engine.health().upstreams.weather).toMatchObject({ tools: 1, quarantined: 1 })

    // The dispatcher rejects it (what direct mode and any call that reaches the host get).
    const quarantine =
      'weather.get_weather changed since it was pinned and is quarantined until it is approved again (sluice lock)'
    const pin = fullLock.servers.weather!.tools.get_weather!
    const pinned = {
      server: 'weather',
      name: 'get_weather',
      ident: 'get_weather',
      definition: pin.definition,
      hash: pin.hash,
    }
    const direct = await rt.engine.callDirect(rt.principal(), pinned, { city: 'Oslo' })
    expect(direct).toEqual({
      content: [{ type: 'text', text: `QUARANTINED: ${quarantine}` }],
      isError: true,
    })

    // From model code the call is rejected before the upstream, on the line that made it:
    // quarantined tools stay in the guest's manifest so the dispatcher can say why.
    const call = await rt.engine.execute(
      rt.principal(),
      [
        '// the old habit',
        "const w = await tools.weather.get_weather({ city: 'Oslo', bcc: 'evil@example.com' })",
        'return w',
      ].join('\n'),
    )
    expect(call.ok).toBe(false)
    expect(call.error).toMatchObject({ code: 'QUARANTINED', message: quarantine, line: 2 })

    const audit = join(rt.dir, 'audit.jsonl')
    await waitFor(
      () => auditRecords(audit).some((r) => r.type === 'tools.quarantined'),
      'the tools.quarantined audit record',
    )
    const record = auditRecords(audit).find((r) => r.type === 'tools.quarantined')
    expect(record).toMatchObject({
      type: 'tools.quarantined',
      tool: 'weather.get_weather',
      code: 'QUARANTINED',
    })
    expect(record?.toolHash).toBe(state?.quarantined[0]?.liveHash)
    expect(auditRecords(audit)).toContainEqual(
      expect.objectContaining({
        type: 'call.decision',
        tool: 'weather.get_weather',
        code: 'QUARANTINED',
      }),
    )
  })
})

describe('a tool the lock does not pin', () => {
  let lockFile: string
  beforeAll(async () => {
    lockFile = join(dir, 'partial.lock.json')
    await writeLock(lockFile, await pinWeather(['get_weather']))
  })

  it('is not exposed, and calling it is UNKNOWN_TOOL, without allowUnpinned', async () => {
    const rt = await testRuntime({ config: { servers: { weather }, lock: { file: lockFile } } })
    try {
      expect(toolNames(rt)).toEqual(['weather.get_weather'])
      expect(rt.engine.catalog.servers().get('weather')?.unpinned).toEqual(['mutate'])
      const call = await rt.engine.execute(rt.principal(), 'await tools.weather.mutate({})')
      expect(call.error).toMatchObject({
        code: 'UNKNOWN_TOOL',
        message: 'tools.weather.mutate does not exist; tools.weather has: get_weather',
        line: 1,
      })
    } finally {
      await rt.close()
    }
  })

  it('is exposed with lock.allowUnpinned, or with the server allowUnpinned', async () => {
    for (const config of [
      { servers: { weather }, lock: { file: lockFile, allowUnpinned: true } },
      { servers: { weather: { ...weather, allowUnpinned: true } }, lock: { file: lockFile } },
    ]) {
      const rt = await testRuntime({ config })
      try {
        expect(toolNames(rt)).toEqual(['weather.get_weather', 'weather.mutate'])
      } finally {
        await rt.close()
      }
    }
  })
})

describe('a signed lock', () => {
  let signer: { privateKey: KeyObject; publicKey: KeyObject }
  let signedFile: string
  let publicKeyFile: string
  beforeAll(async () => {
    signer = generateKeyPairSync('ed25519')
    signedFile = join(dir, 'signed.lock.json')
    await writeLock(signedFile, fullLock, { signingKey: signer.privateKey })
    publicKeyFile = join(dir, 'lock-public.pem')
    writeFileSync(publicKeyFile, signer.publicKey.export({ type: 'spki', format: 'pem' }))
  })

  it('starts when the signature verifies with the configured public key', async () => {
    const rt = await testRuntime({
      config: { servers: { weather }, lock: { file: signedFile, publicKeyFile } },
    })
    try {
      expect(toolNames(rt)).toEqual(['weather.get_weather', 'weather.mutate'])
    } finally {
      await rt.close()
    }
  })

  it('stops the start with SIGNATURE_INVALID when the lock was edited after signing', async () => {
    const tampered = join(dir, 'tampered.lock.json')
    const data = JSON.parse(readFileSync(signedFile, 'utf8')) as LockFile
    writeFileSync(
      tampered,
      JSON.stringify({ ...data, generatedAt: '2000-01-01T00:00:00.000Z' }, null, 2),
    )
    const error = await startError({
      servers: { weather },
      lock: { file: tampered, publicKeyFile },
    })
    expect(isSluiceError(error) && error.code).toBe('SIGNATURE_INVALID')
    expect((error as Error).message).toBe(
      `lock file ${tampered}: the signature does not verify with the configured public key`,
    )
  })

  it('stops the start with SIGNATURE_INVALID when another key signed it', async () => {
    const other = generateKeyPairSync('ed25519')
    const otherFile = join(dir, 'other-public.pem')
    writeFileSync(otherFile, other.publicKey.export({ type: 'spki', format: 'pem' }))
    const error = await startError({
      servers: { weather },
      lock: { file: signedFile, publicKeyFile: otherFile },
    })
    expect(isSluiceError(error) && error.code).toBe('SIGNATURE_INVALID')
    expect((error as Error).message).toBe(
      `lock file ${signedFile}: the signature does not verify with the configured public key`,
    )
  })

  it('stops the start with SIGNATURE_INVALID when a key is configured but the lock is unsigned', async () => {
    const unsigned = join(dir, 'unsigned.lock.json')
    await writeLock(unsigned, fullLock)
    const error = await startError({
      servers: { weather },
      lock: { file: unsigned, publicKeyFile },
    })
    expect(isSluiceError(error) && error.code).toBe('SIGNATURE_INVALID')
    expect((error as Error).message).toBe(
      `lock file ${unsigned} is not signed, but a public key is configured`,
    )
  })
})
