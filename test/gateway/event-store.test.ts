/**
 * The in-process event store behind resumable 2025-11-25 SSE streams (src/gateway/event-store.ts):
 * ids, exact replay, the two limits at N and N+1 (events per stream, bytes per process), and
 * release when a session closes.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { describe, expect, it } from 'vitest'
import { EVENT_OVERHEAD_BYTES, EventBuffer } from '../../src/gateway/event-store.js'

const note = (i: number): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/progress',
  params: { progressToken: 1, progress: i },
})
const bytesOf = (m: object): number => Buffer.byteLength(JSON.stringify(m)) + EVENT_OVERHEAD_BYTES

async function replay(store: ReturnType<EventBuffer['session']>, after: string) {
  const got: Array<{ id: string; message: JSONRPCMessage }> = []
  const stream = await store.replayEventsAfter(after, {
    send: async (id, message) => void got.push({ id, message }),
  })
  return { stream, got }
}

const big = () => new EventBuffer({ maxEventsPerStream: 1000, maxBytes: 1 << 20 })

describe('EventBuffer', () => {
  it('gives each event an id naming its stream, and replays what came after a cursor, in order', async () => {
    const store = big().session()
    const priming = await store.storeEvent('s1', {} as JSONRPCMessage)
    const ids = [
      await store.storeEvent('s1', note(1)),
      await store.storeEvent('s2', note(99)),
      await store.storeEvent('s1', note(2)),
    ]
    expect(priming).toMatch(/^s1:\d+$/)
    expect(new Set([priming, ...ids]).size).toBe(4)
    expect(await store.getStreamIdForEventId(ids[1]!)).toBe('s2')
    expect(await store.getStreamIdForEventId('nope:1')).toBeUndefined()
    // The priming event (`{}`) is never replayed; the other stream's events are not either.
    expect(await replay(store, priming)).toEqual({
      stream: 's1',
      got: [
        { id: ids[0], message: note(1) },
        { id: ids[2], message: note(2) },
      ],
    })
    expect(await replay(store, ids[0]!)).toEqual({
      stream: 's1',
      got: [{ id: ids[2], message: note(2) }],
    })
    expect(store.resumeRefusal(ids[2]!)).toBeUndefined()
    expect((await replay(store, ids[2]!)).got).toEqual([])
  })

  it('refuses ids it never gave out', () => {
    const store = big().session()
    expect(store.resumeRefusal('garbage')).toBe(
      'no event of that stream is held (an unknown id, or all of its events were dropped)',
    )
    expect(store.resumeRefusal('s1:0')).toBe(
      'no event of that stream is held (an unknown id, or all of its events were dropped)',
    )
  })

  it('refuses a cursor past the last event it sent', async () => {
    const store = big().session()
    await store.storeEvent('s1', note(1))
    expect(store.resumeRefusal('s1:5')).toBe('no such event was sent')
  })

  it('holds maxEventsPerStream events of a stream: a resume after N events works, after N+1 is refused', async () => {
    const N = 4
    const buffer = new EventBuffer({ maxEventsPerStream: N, maxBytes: 1 << 20 })
    const store = buffer.session()
    const cursor = await store.storeEvent('s', note(0))
    const after: string[] = []
    for (let i = 1; i <= N; i++) after.push(await store.storeEvent('s', note(i)))
    // N events after the cursor: the cursor itself was dropped, every event after it is held.
    expect(store.resumeRefusal(cursor)).toBeUndefined()
    expect((await replay(store, cursor)).got.map((e) => e.id)).toEqual(after)
    expect(store.size).toBe(N)

    after.push(await store.storeEvent('s', note(N + 1)))
    expect(store.resumeRefusal(cursor)).toBe(
      'events sent after it were dropped to stay within gateway.resumability limits',
    )
    await expect(replay(store, cursor)).rejects.toThrow(
      `cannot resume after ${cursor}: events sent after it were dropped`,
    )
    // A later cursor still resumes exactly.
    expect((await replay(store, after[0]!)).got.map((e) => e.id)).toEqual(after.slice(1))
    expect(store.size).toBe(N)
  })

  it('holds maxBytes over every session, oldest first: N bytes are held, N+1 drop the oldest', async () => {
    const one = bytesOf(note(1))
    const fill = async (maxBytes: number) => {
      const buffer = new EventBuffer({ maxEventsPerStream: 1000, maxBytes })
      const a = buffer.session()
      const b = buffer.session()
      const first = await a.storeEvent('a', note(1))
      await b.storeEvent('b', note(2))
      await a.storeEvent('a', note(3))
      return { buffer, a, b, first }
    }
    const exact = await fill(3 * one)
    expect(exact.buffer.bytes).toBe(3 * one)
    expect(exact.buffer.size).toBe(3)
    expect(exact.a.resumeRefusal(exact.first)).toBeUndefined()

    // Three events are one byte over this budget: the process's oldest (a's first) goes.
    const over = await fill(3 * one - 1)
    expect(over.buffer.bytes).toBe(2 * one)
    expect(over.buffer.size).toBe(2)
    expect(over.a.size).toBe(1)
    expect(over.b.size).toBe(1)
  })

  it('an event larger than maxBytes is not held, and the stream then refuses every resume', async () => {
    // Room for one small event with its overhead, not for the 400-character one.
    const buffer = new EventBuffer({
      maxEventsPerStream: 1000,
      maxBytes: EVENT_OVERHEAD_BYTES + 200,
    })
    const store = buffer.session()
    const cursor = await store.storeEvent('s', {} as JSONRPCMessage)
    await store.storeEvent('s', {
      ...note(1),
      params: { progressToken: 1, progress: 1, message: 'x'.repeat(400) },
    } as JSONRPCMessage)
    expect(buffer.size).toBe(0)
    expect(buffer.bytes).toBe(0)
    expect(store.resumeRefusal(cursor)).toBe(
      'no event of that stream is held (an unknown id, or all of its events were dropped)',
    )
    // The stream goes on after the drop; a cursor from before it stays refused.
    const next = await store.storeEvent('s', note(2))
    expect(store.resumeRefusal(cursor)).toBe(
      'events sent after it were dropped to stay within gateway.resumability limits',
    )
    expect(store.resumeRefusal(next)).toBeUndefined()
  })

  it('releases a session: its events and bytes go, later events get ids and are not held', async () => {
    const buffer = big()
    const gone = buffer.session()
    const kept = buffer.session()
    const cursor = await gone.storeEvent('s', note(1))
    await gone.storeEvent('s', note(2))
    await kept.storeEvent('k', note(3))
    gone.release()
    gone.release()
    expect(gone.size).toBe(0)
    expect(buffer.size).toBe(1)
    expect(buffer.bytes).toBe(bytesOf(note(3)))
    expect(gone.resumeRefusal(cursor)).toBe(
      'no event of that stream is held (an unknown id, or all of its events were dropped)',
    )
    expect(await gone.storeEvent('s', note(4))).toMatch(/^s:\d+$/)
    expect(buffer.size).toBe(1)
  })

  it('refuses limits that are not positive integers', () => {
    expect(() => new EventBuffer({ maxEventsPerStream: 0, maxBytes: 1 })).toThrow(
      'maxEventsPerStream must be a positive integer',
    )
    expect(() => new EventBuffer({ maxEventsPerStream: 1, maxBytes: 0 })).toThrow(
      'maxBytes must be a positive integer',
    )
  })
})
