/**
 * The per-execution label ledger (src/engine/labels.ts): calls take their turn in issue order
 * whatever order they arrive in, a call refused before its decision never blocks the ones after
 * it, labels are kept in first-seen order, and labels can only be added by the call whose turn
 * it is.
 */
import { describe, expect, it } from 'vitest'
import { LabelLedger } from '../../src/engine/labels.js'
import { SluiceError } from '../../src/errors.js'

/** Settles pending promise callbacks (no timers: the ledger never waits on time). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Marks when each turn was granted, in grant order. */
function track(ledger: LabelLedger, index: number, granted: number[]): Promise<void> {
  return ledger.turn(index).then(() => {
    granted.push(index)
  })
}

describe('LabelLedger turns', () => {
  it('grants call 0 at once and call 1 only after call 0 passed', async () => {
    const ledger = new LabelLedger()
    const granted: number[] = []
    const one = track(ledger, 1, granted)
    await track(ledger, 0, granted)
    await flush()
    expect(granted).toEqual([0])
    ledger.authorise(0, ['confidential'])
    await one
    expect(granted).toEqual([0, 1])
    expect(ledger.labels()).toEqual(['confidential'])
  })

  it('decides calls in index order whatever order they ask in', async () => {
    const ledger = new LabelLedger()
    const granted: number[] = []
    // Each call authorises as soon as it has its turn, so the next one can go on.
    const ask = (index: number) =>
      ledger.turn(index).then(() => {
        granted.push(index)
        ledger.authorise(index, [`l${index}`])
      })
    const order = [5, 2, 7, 0, 3, 6, 1, 4]
    await Promise.all(order.map(ask))
    expect(granted).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(ledger.labels()).toEqual(['l0', 'l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7'])
  })

  it('does not block later calls on a call refused before it asked for its turn', async () => {
    const ledger = new LabelLedger()
    const granted: number[] = []
    await track(ledger, 0, granted)
    const two = track(ledger, 2, granted)
    // Call 1 was refused by validation: it never asks for a turn, only passes.
    ledger.pass(1)
    ledger.authorise(0, [])
    await two
    expect(granted).toEqual([0, 2])
  })

  it('lets a call pass before an earlier one has decided; the earlier one still goes first', async () => {
    const ledger = new LabelLedger()
    const granted: number[] = []
    ledger.pass(1)
    ledger.pass(2)
    const three = track(ledger, 3, granted)
    await flush()
    expect(granted).toEqual([])
    await track(ledger, 0, granted)
    ledger.pass(0)
    await three
    expect(granted).toEqual([0, 3])
  })

  it('passing twice is harmless', async () => {
    const ledger = new LabelLedger()
    await ledger.turn(0)
    ledger.authorise(0, ['a'])
    ledger.pass(0)
    ledger.pass(0)
    await ledger.turn(1)
    ledger.authorise(1, ['b'])
    expect(ledger.labels()).toEqual(['a', 'b'])
  })

  it('rejects a turn asked twice or after the call passed', async () => {
    const ledger = new LabelLedger()
    const waiting = ledger.turn(1)
    await expect(ledger.turn(1)).rejects.toThrow('turn: call 1 asked for its turn twice')
    await ledger.turn(0)
    ledger.pass(0)
    await waiting
    ledger.pass(1)
    await expect(ledger.turn(0)).rejects.toThrow('turn: call 0 asked for its turn twice')
    await expect(ledger.turn(-1)).rejects.toThrow('turn: -1 is not a call index')
  })

  it('rejects a waiting turn with CANCELLED when the execution ends, and the call can still pass', async () => {
    const ledger = new LabelLedger()
    const ended = new AbortController()
    const waiting = ledger.turn(1, ended.signal)
    ended.abort()
    const error = await waiting.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SluiceError)
    expect(error).toMatchObject({
      code: 'CANCELLED',
      message: 'the execution ended while the call waited its turn',
    })
    ledger.pass(1)
    await ledger.turn(0)
    ledger.pass(0)
    // Call 2 goes straight on: 0 and 1 both passed.
    await ledger.turn(2)
  })

  it('rejects at once when the signal has aborted already', async () => {
    const ledger = new LabelLedger()
    await expect(ledger.turn(3, AbortSignal.abort())).rejects.toMatchObject({ code: 'CANCELLED' })
  })
})

describe('LabelLedger labels', () => {
  it('keeps first-seen order without repeats, and what each call added', async () => {
    const ledger = new LabelLedger()
    await ledger.turn(0)
    ledger.authorise(0, ['pii', 'confidential'])
    await ledger.turn(1)
    ledger.authorise(1, ['confidential', 'egress'])
    expect(ledger.labels()).toEqual(['pii', 'confidential', 'egress'])
    expect(ledger.labelsOf(0)).toEqual(['pii', 'confidential'])
    expect(ledger.labelsOf(1)).toEqual(['confidential', 'egress'])
    expect(ledger.labelsOf(2)).toEqual([])
  })

  it('adds nothing for a call that passes without being authorised (a denial)', async () => {
    const ledger = new LabelLedger()
    await ledger.turn(0)
    ledger.pass(0)
    expect(ledger.labels()).toEqual([])
    expect(ledger.labelsOf(0)).toEqual([])
  })

  it('add() puts labels on the call that holds the turn, before its decision', async () => {
    const ledger = new LabelLedger()
    await ledger.turn(0)
    ledger.add(['confidential'])
    // The decision of the same call sees them.
    expect(ledger.labels()).toEqual(['confidential'])
    ledger.authorise(0, ['egress'])
    expect(ledger.labelsOf(0)).toEqual(['confidential', 'egress'])
  })

  it('refuses add() when no call holds the turn', async () => {
    const ledger = new LabelLedger()
    expect(() => ledger.add(['x'])).toThrow(
      'LabelLedger.add: only the call that holds the turn may add labels',
    )
    await ledger.turn(0)
    ledger.pass(0)
    expect(() => ledger.add(['x'])).toThrow('only the call that holds the turn')
    expect(ledger.labels()).toEqual([])
  })

  it('refuses authorise() by a call that does not hold the turn', async () => {
    const ledger = new LabelLedger()
    const one = ledger.turn(1)
    expect(() => ledger.authorise(1, ['egress'])).toThrow(
      'LabelLedger.authorise: call 1 does not hold the turn',
    )
    await ledger.turn(0)
    ledger.authorise(0, [])
    await one
    ledger.authorise(1, ['egress'])
    expect(ledger.labels()).toEqual(['egress'])
  })

  it('returns copies: a caller cannot change the ledger through labels()', async () => {
    const ledger = new LabelLedger()
    await ledger.turn(0)
    ledger.authorise(0, ['a'])
    const seen = ledger.labels() as string[]
    seen.push('b')
    expect(ledger.labels()).toEqual(['a'])
  })
})
