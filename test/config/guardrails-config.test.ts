import { describe, expect, it } from 'vitest'
import { DEFAULT_PII, parseConfig, PII_KINDS } from '../../src/config/index.js'

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
