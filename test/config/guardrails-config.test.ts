import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  DEFAULT_PII,
  parseConfig,
  parseVaultKey,
  PII_KINDS,
  readVaultKey,
} from '../../src/config/index.js'

const servers = {
  crm: { command: 'node', args: ['crm.js'] },
  mail: { command: 'node', args: ['mail.js'] },
}

function problemOf(input: unknown): string {
  try {
    parseConfig(input, '/etc/sluice.yaml', '/etc')
  } catch (e) {
    return (e as Error).message
  }
  throw new Error('expected the config to be refused')
}

describe('guardrails config', () => {
  it('is off without the block; the pii block switches tokenisation on with every kind', () => {
    expect(parseConfig({ servers }).guardrails).toEqual({ spotlight: false })
    expect(parseConfig({ servers, guardrails: { pii: {} } }).guardrails.pii).toEqual({
      mode: 'tokenize',
      detect: [...PII_KINDS],
      boundary: 'model',
      resolveFor: [],
      ...DEFAULT_PII,
    })
  })

  it('names an unknown detect kind with its did-you-mean', () => {
    expect(problemOf({ servers, guardrails: { pii: { detect: ['email', 'emial'] } } })).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.detect[1]: unknown value "emial" (did you mean "email"?); expected one of email, phone, card, iban, ssn, ip, api_key, jwt, private_key',
    )
  })

  it('refuses a resolveFor entry for a server that is not configured, with its did-you-mean', () => {
    expect(problemOf({ servers, guardrails: { pii: { resolveFor: ['mial.send_email'] } } })).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.resolveFor[0]: "mial.send_email" names no configured server "mial" (did you mean "mail"?)',
    )
  })

  it('refuses a resolveFor entry that is not server.tool or server.*', () => {
    expect(problemOf({ servers, guardrails: { pii: { resolveFor: ['mail'] } } })).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.resolveFor[0]: expected "server.tool" or "server.*"',
    )
  })

  it('bounds ttlSeconds at 7 days (N) and refuses N+1', () => {
    const week = 7 * 86_400
    expect(
      parseConfig({ servers, guardrails: { pii: { ttlSeconds: week } } }).guardrails.pii
        ?.ttlSeconds,
    ).toBe(week)
    expect(problemOf({ servers, guardrails: { pii: { ttlSeconds: week + 1 } } })).toMatch(
      /^invalid config \/etc\/sluice\.yaml: guardrails\.pii\.ttlSeconds: Too big: expected number to be <=604800$/,
    )
  })
})

describe('guardrails.pii.vaultKeyFrom', () => {
  const redis = { redis: { url: 'redis://127.0.0.1:6379' } }
  const hex = 'a'.repeat(64)
  const base64 = Buffer.alloc(32, 7).toString('base64')
  let dir: string | undefined
  afterEach(() => {
    delete process.env.SLUICE_TEST_VAULT_KEY
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })
  const keyed = (ref: string, baseDir = '/etc') =>
    parseConfig(
      { servers, store: redis, guardrails: { pii: { vaultKeyFrom: ref } } },
      '/etc/sluice.yaml',
      baseDir,
    )

  it('is required with store.redis and tokenize, and says why', () => {
    expect(problemOf({ servers, store: redis, guardrails: { pii: {} } })).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.vaultKeyFrom: required with store.redis when pii.mode is tokenize: the vault is then kept in Redis, where its values would sit in plaintext, and every replica needs the same key to read the tokens the others made; expected env:NAME or file:PATH holding 32 random bytes as base64 or hex (openssl rand -base64 32)',
    )
    // redact keeps no vault, the in-process store keeps the in-process vault: no key needed.
    expect(() =>
      parseConfig({ servers, store: redis, guardrails: { pii: { mode: 'redact' } } }),
    ).not.toThrow()
    expect(() => parseConfig({ servers, guardrails: { pii: {} } })).not.toThrow()
  })

  it('is a secret reference, never an inline key', () => {
    expect(problemOf({ servers, guardrails: { pii: { vaultKeyFrom: hex } } })).toMatch(
      /^invalid config \/etc\/sluice\.yaml: guardrails\.pii\.vaultKeyFrom: expected "env:NAME" or "file:PATH"/,
    )
  })

  it('reads 32 bytes as 64 hex digits or base64 (standard or URL-safe, padded or not)', () => {
    expect(parseVaultKey(hex)).toEqual(Buffer.alloc(32, 0xaa))
    expect(parseVaultKey(`${base64}\n`)).toEqual(Buffer.alloc(32, 7))
    const url = Buffer.alloc(32, 0xfb).toString('base64url')
    expect(url).toHaveLength(43)
    expect(parseVaultKey(url)).toEqual(Buffer.alloc(32, 0xfb))
    // 31 and 33 bytes, 63 hex digits, a passphrase: not a key.
    for (const wrong of [
      Buffer.alloc(31).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      'a'.repeat(63),
      'correct horse battery staple',
    ])
      expect(parseVaultKey(wrong)).toBeUndefined()
  })

  it('is read from the environment or a file (relative to the config), at start', () => {
    process.env.SLUICE_TEST_VAULT_KEY = base64
    expect(readVaultKey(keyed('env:SLUICE_TEST_VAULT_KEY'))).toEqual(Buffer.alloc(32, 7))
    dir = mkdtempSync(join(tmpdir(), 'sluice-vault-key-'))
    writeFileSync(join(dir, 'vault.key'), `${hex}\n`)
    expect(readVaultKey(keyed('file:vault.key', dir))).toEqual(Buffer.alloc(32, 0xaa))
    expect(readVaultKey(parseConfig({ servers }))).toBeUndefined()
  })

  it('names file, path and what was expected when the key is missing or malformed, never the key', () => {
    const failure = (ref: string): string => {
      try {
        readVaultKey(keyed(ref))
      } catch (e) {
        return (e as Error).message
      }
      throw new Error('expected the key to be refused')
    }
    expect(failure('env:SLUICE_TEST_VAULT_KEY')).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.vaultKeyFrom: secret env:SLUICE_TEST_VAULT_KEY: environment variable SLUICE_TEST_VAULT_KEY is not set',
    )
    process.env.SLUICE_TEST_VAULT_KEY = 'hunter2-hunter2'
    const message = failure('env:SLUICE_TEST_VAULT_KEY')
    expect(message).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.vaultKeyFrom: env:SLUICE_TEST_VAULT_KEY holds 15 characters that are not a 32-byte key; expected 64 hex digits or base64 of 32 bytes (openssl rand -base64 32)',
    )
    expect(message).not.toContain('hunter')
    expect(failure('file:missing.key')).toBe(
      'invalid config /etc/sluice.yaml: guardrails.pii.vaultKeyFrom: secret file:missing.key: cannot read /etc/missing.key',
    )
  })
})

describe("the README's guardrails example", () => {
  it('is a valid config', async () => {
    const { readFileSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { parse } = await import('yaml')
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('### Guarding what reaches the model'))
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!
    const config = parseConfig(parse(yaml), '/README.md', '/')
    expect(config.guardrails.pii?.resolveFor).toEqual(['mail.send_email'])
    expect(config.guardrails.spotlight).toBe(true)
  })
})
