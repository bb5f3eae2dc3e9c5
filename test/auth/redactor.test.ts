/** The redactor: registered secrets and their encodings never survive `redact`/`redactJson`. */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createRedactor, MIN_SECRET_LENGTH } from '../../src/auth/index.js'

const canary = (): string => `cnry/${randomBytes(18).toString('base64')}`

describe('createRedactor', () => {
  it('replaces a secret and its base64, base64url, URL- and JSON-encoded forms', () => {
    const r = createRedactor()
    const secret = `${canary()}"+&`
    r.add(secret)
    const forms = [
      secret,
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('base64url'),
      encodeURIComponent(secret),
      JSON.stringify(secret).slice(1, -1),
    ]
    for (const form of forms) {
      const out = r.redact(`before ${form} after`)
      expect(out).toBe('before [REDACTED] after')
      expect(r.contains(form)).toBe(true)
    }
  })

  it('redacts every occurrence, keys included, in JSON values', () => {
    const r = createRedactor()
    const a = canary()
    const b = canary()
    r.add(a)
    r.add(b)
    const out = r.redactJson({ [a]: [a, `${b}:${a}`, 1, null, { deep: { deeper: b } }], ok: true })
    expect(JSON.stringify(out)).not.toContain(a)
    expect(JSON.stringify(out)).not.toContain(b)
    expect(out).toEqual({
      '[REDACTED]': [
        '[REDACTED]',
        '[REDACTED]:[REDACTED]',
        1,
        null,
        { deep: { deeper: '[REDACTED]' } },
      ],
      ok: true,
    })
  })

  it(`registers secrets of ${MIN_SECRET_LENGTH} characters and ignores ${MIN_SECRET_LENGTH - 1}`, () => {
    const r = createRedactor()
    r.add('x'.repeat(MIN_SECRET_LENGTH - 1))
    expect(r.size).toBe(0)
    r.add('y'.repeat(MIN_SECRET_LENGTH))
    expect(r.size).toBe(1)
    expect(r.redact(`a ${'y'.repeat(MIN_SECRET_LENGTH)} b`)).toBe('a [REDACTED] b')
  })

  it('prefers the longest match so no fragment of a longer secret survives', () => {
    const r = createRedactor()
    r.add('secret-value')
    r.add('secret-value-longer-one')
    expect(r.redact('x secret-value-longer-one y')).toBe('x [REDACTED] y')
  })

  it('keeps at most maxSecrets, forgetting the oldest', () => {
    const r = createRedactor({ maxSecrets: 2 })
    const [a, b, c] = [canary(), canary(), canary()]
    r.add(a)
    r.add(b)
    expect(r.size).toBe(2)
    r.add(c)
    expect(r.size).toBe(2)
    expect(r.values()).toEqual([b, c])
    expect(r.redact(a)).toBe(a)
  })

  it('leaves text alone when nothing is registered', () => {
    expect(createRedactor().redact('plain')).toBe('plain')
    expect(createRedactor().contains('plain')).toBe(false)
  })
})
