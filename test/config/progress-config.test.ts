/**
 * The config of progress and resumability: `limits.callMaxTotalMs` and `gateway.resumability`,
 * their defaults, and each bound at N and N+1 with the path named.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, DEFAULT_RESUMABILITY, parseConfig } from '../../src/config/index.js'
import { configRefusal } from '../helpers/errors.js'

const refusal = (raw: Record<string, unknown>) => configRefusal(raw)

const MiB = 1024 * 1024

describe('progress and resumability config', () => {
  it('defaults: a call with progress runs at most 5 minutes; 1000 events per stream, 16 MiB, retry 1 s', () => {
    const config = parseConfig({})
    expect(DEFAULT_LIMITS.callMaxTotalMs).toBe(300_000)
    expect(config.limits.callMaxTotalMs).toBe(300_000)
    expect(DEFAULT_RESUMABILITY).toEqual({
      retryMs: 1_000,
      maxEventsPerStream: 1_000,
      maxBytes: 16 * MiB,
    })
    expect(config.gateway.resumability).toEqual(DEFAULT_RESUMABILITY)
    expect(
      parseConfig({ gateway: { resumability: { retryMs: 250 } } }).gateway.resumability,
    ).toEqual({ ...DEFAULT_RESUMABILITY, retryMs: 250 })
  })

  it('limits.callMaxTotalMs: 1 and 24 h load; 0 and 24 h + 1 ms are refused', () => {
    const day = 24 * 60 * 60_000
    expect(parseConfig({ limits: { callMaxTotalMs: 1 } }).limits.callMaxTotalMs).toBe(1)
    expect(parseConfig({ limits: { callMaxTotalMs: day } }).limits.callMaxTotalMs).toBe(day)
    expect(refusal({ limits: { callMaxTotalMs: 0 } })).toContain('limits.callMaxTotalMs')
    expect(refusal({ limits: { callMaxTotalMs: day + 1 } })).toContain('limits.callMaxTotalMs')
  })

  it('gateway.resumability bounds at N and N+1', () => {
    const r = (resumability: Record<string, unknown>) =>
      parseConfig({ gateway: { resumability } }).gateway.resumability
    const bad = (resumability: Record<string, unknown>) => refusal({ gateway: { resumability } })
    expect(r({ retryMs: 1 }).retryMs).toBe(1)
    expect(r({ retryMs: 60_000 }).retryMs).toBe(60_000)
    expect(bad({ retryMs: 0 })).toContain('gateway.resumability.retryMs')
    expect(bad({ retryMs: 60_001 })).toContain('gateway.resumability.retryMs')
    expect(r({ maxEventsPerStream: 1 }).maxEventsPerStream).toBe(1)
    expect(r({ maxEventsPerStream: 1_000_000 }).maxEventsPerStream).toBe(1_000_000)
    expect(bad({ maxEventsPerStream: 0 })).toContain('gateway.resumability.maxEventsPerStream')
    expect(bad({ maxEventsPerStream: 1_000_001 })).toContain(
      'gateway.resumability.maxEventsPerStream',
    )
    // 0 bytes: nothing is held, so streams carry no event ids at all.
    expect(r({ maxBytes: 0 }).maxBytes).toBe(0)
    expect(r({ maxBytes: 1024 * MiB }).maxBytes).toBe(1024 * MiB)
    expect(bad({ maxBytes: -1 })).toContain('gateway.resumability.maxBytes')
    expect(bad({ maxBytes: 1024 * MiB + 1 })).toContain('gateway.resumability.maxBytes')
    expect(bad({ maxEvents: 5 })).toContain('gateway.resumability')
  })
})
