/**
 * The instance clock (src/sandbox/clock.ts): the guest's time moves only on `tick`, the clock
 * throws once past the deadline (and stays expired), and a glue that stopped binding the clock
 * import to Date.now() is refused.
 */
import { describe, expect, it } from 'vitest'
import { CLOCK_IMPORT, DEADLINE_PASSED, InstanceClock, withClock } from '../../src/sandbox/clock.js'

describe('InstanceClock', () => {
  it('shows the guest the time of its last tick, whatever the real time', () => {
    const clock = new InstanceClock()
    clock.guestNowMs = 1_000
    expect(clock.now()).toBe(1_000)
    clock.tick()
    expect(Math.abs(clock.now() - Date.now())).toBeLessThan(1_000)
  })

  it('throws past the deadline, and is expired from then on', () => {
    const clock = new InstanceClock()
    clock.deadline = Date.now() + 60_000
    expect(() => clock.now()).not.toThrow()
    expect(clock.expired).toBe(false)
    clock.deadline = Date.now() - 1
    expect(() => clock.now()).toThrow(DEADLINE_PASSED)
    expect(clock.expired).toBe(true)
  })
})

describe('withClock', () => {
  const glueClock = () => Date.now()
  it('replaces only the clock import, in a copy', () => {
    const other = () => 1
    const imports = { a: { [CLOCK_IMPORT.name]: glueClock, q: other } }
    const clock = new InstanceClock()
    const out = withClock(imports, clock)
    expect(out.a![CLOCK_IMPORT.name]).toBe(clock.now)
    expect(out.a!.q).toBe(other)
    expect(imports.a[CLOCK_IMPORT.name]).toBe(glueClock)
  })

  it('refuses a glue whose clock import is something else', () => {
    expect(() => withClock({ a: { [CLOCK_IMPORT.name]: () => 0 } }, new InstanceClock())).toThrow(
      'sluice: the QuickJS glue no longer binds import a.p to Date.now(); re-pin the clock import (test/security/wasm-imports.test.ts)',
    )
  })
})
