/**
 * The config of tasks, `gateway.tasks`: its defaults, each bound at N and N+1 with the path
 * named, and a mistyped key with its did-you-mean.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_TASKS, parseConfig } from '../../src/config/index.js'
import { configRefusal } from '../helpers/errors.js'

const refusal = (raw: Record<string, unknown>) => configRefusal(raw)

const tasks = (t: Record<string, unknown>) => parseConfig({ gateway: { tasks: t } }).gateway.tasks
const bad = (t: Record<string, unknown>) => refusal({ gateway: { tasks: t } })

describe('gateway.tasks', () => {
  it('defaults: kept 1 h, polled every 1 s, a 15 s lease, 10 per caller', () => {
    expect(DEFAULT_TASKS).toEqual({
      ttlMs: 3_600_000,
      pollIntervalMs: 1_000,
      leaseMs: 15_000,
      maxPerPrincipal: 10,
    })
    expect(parseConfig({}).gateway.tasks).toEqual(DEFAULT_TASKS)
    expect(tasks({ maxPerPrincipal: 3 })).toEqual({ ...DEFAULT_TASKS, maxPerPrincipal: 3 })
  })

  it('each bound at N and N+1, the refusal naming the path and the bound', () => {
    expect(tasks({ ttlMs: 1_000 }).ttlMs).toBe(1_000)
    expect(tasks({ ttlMs: 86_400_000 }).ttlMs).toBe(86_400_000)
    expect(bad({ ttlMs: 999 })).toBe(
      'invalid config <inline>: gateway.tasks.ttlMs: Too small: expected number to be >=1000',
    )
    expect(bad({ ttlMs: 86_400_001 })).toBe(
      'invalid config <inline>: gateway.tasks.ttlMs: Too big: expected number to be <=86400000',
    )
    expect(tasks({ pollIntervalMs: 100 }).pollIntervalMs).toBe(100)
    expect(tasks({ pollIntervalMs: 60_000 }).pollIntervalMs).toBe(60_000)
    expect(bad({ pollIntervalMs: 99 })).toContain('gateway.tasks.pollIntervalMs')
    expect(bad({ pollIntervalMs: 60_001 })).toContain('gateway.tasks.pollIntervalMs')
    expect(tasks({ leaseMs: 300 }).leaseMs).toBe(300)
    expect(tasks({ leaseMs: 300_000 }).leaseMs).toBe(300_000)
    expect(bad({ leaseMs: 299 })).toContain('gateway.tasks.leaseMs')
    expect(bad({ leaseMs: 300_001 })).toContain('gateway.tasks.leaseMs')
    expect(tasks({ maxPerPrincipal: 1 }).maxPerPrincipal).toBe(1)
    expect(tasks({ maxPerPrincipal: 10_000 }).maxPerPrincipal).toBe(10_000)
    expect(bad({ maxPerPrincipal: 0 })).toContain('gateway.tasks.maxPerPrincipal')
    expect(bad({ maxPerPrincipal: 10_001 })).toContain('gateway.tasks.maxPerPrincipal')
    expect(bad({ maxPerPrincipal: 2.5 })).toContain('gateway.tasks.maxPerPrincipal')
  })

  it('a mistyped key is refused with the key it probably meant', () => {
    expect(bad({ maxPerPrinciple: 3 })).toBe(
      'invalid config <inline>: gateway.tasks: unknown key "maxPerPrinciple" (did you mean "maxPerPrincipal"?)',
    )
    expect(refusal({ gateway: { task: {} } })).toBe(
      'invalid config <inline>: gateway: unknown key "task" (did you mean "tasks"?)',
    )
  })
})
