/** Pure helpers of the upstream module: message sanitising and reconnect backoff. */
import { describe, expect, it } from 'vitest'
import {
  backoffDelayMs,
  MAX_UPSTREAM_MESSAGE_CHARS,
  sanitizeMessage,
} from '../../src/upstream/index.js'

describe('sanitizeMessage', () => {
  it('keeps the first line only (no stack)', () => {
    expect(sanitizeMessage('Error: boom\n    at run (/srv/app/index.js:1:2)')).toBe('Error: boom')
  })

  it('replaces host paths, keeps URLs without credentials or query', () => {
    expect(sanitizeMessage("ENOENT: open '/root/.ssh/id_rsa'")).toBe("ENOENT: open '<path>'")
    expect(sanitizeMessage('C:\\Users\\bob\\secret.txt missing')).toBe('<path> missing')
    expect(sanitizeMessage('see file:///etc/shadow')).toBe('see <path>')
    expect(sanitizeMessage('GET https://user:pw@api.example.com/v1/x?token=abc failed')).toBe(
      'GET https://api.example.com/v1/x failed',
    )
    expect(sanitizeMessage('ratio a/b is 1/2')).toBe('ratio a/b is 1/2')
  })

  it(`caps the length at ${MAX_UPSTREAM_MESSAGE_CHARS} characters`, () => {
    expect(sanitizeMessage('x'.repeat(MAX_UPSTREAM_MESSAGE_CHARS))).toHaveLength(
      MAX_UPSTREAM_MESSAGE_CHARS,
    )
    const long = sanitizeMessage('x'.repeat(MAX_UPSTREAM_MESSAGE_CHARS + 1))
    expect(long).toHaveLength(MAX_UPSTREAM_MESSAGE_CHARS)
    expect(long.endsWith('…')).toBe(true)
  })
})

describe('backoffDelayMs', () => {
  const fixed = { initialBackoffMs: 100, maxBackoffMs: 5_000, random: () => 1 - Number.EPSILON }

  it('retries the first failure at once', () => {
    expect(backoffDelayMs(0, fixed)).toBe(0)
    expect(backoffDelayMs(1, fixed)).toBe(0)
  })

  it('doubles from the initial delay', () => {
    expect([2, 3, 4, 5].map((n) => backoffDelayMs(n, fixed))).toEqual([100, 200, 400, 800])
  })

  it('reaches the cap and never passes it', () => {
    // 100 · 2^5 = 3200 < 5000 at 7 failures; 100 · 2^6 = 6400 is capped at 5000 from 8 on.
    expect(backoffDelayMs(7, fixed)).toBe(3_200)
    expect(backoffDelayMs(8, fixed)).toBe(5_000)
    expect(backoffDelayMs(1_000, fixed)).toBe(5_000)
  })

  it('jitters between half and all of the delay', () => {
    expect(backoffDelayMs(3, { ...fixed, random: () => 0 })).toBe(100)
    expect(backoffDelayMs(3, { ...fixed, random: () => 0.5 })).toBe(150)
  })
})
