/**
 * Resumable SSE streams for 2025-11-25 sessions: the events `sluice serve` sent on each stream,
 * held in this process so a client whose stream dropped can reconnect with `Last-Event-ID` and
 * get what it missed (spec 2025-11-25, transports, "Resumability and Redelivery"). The SDK 1.x
 * transport asks the store for an id per event and writes it as the SSE `id:`, after a priming
 * event (an id and no data) that opens each stream.
 *
 * In-process on purpose: a 2025-11-25 session lives in the process that opened it (another
 * replica answers `404 Session not found`), so its events are only ever asked for here.
 *
 * Bounded two ways, oldest first:
 * - per stream: at most `maxEventsPerStream` events; a new one pushes the stream's oldest out;
 * - per process: at most `maxBytes` over every session, each event counted as its JSON plus
 *   {@link EVENT_OVERHEAD_BYTES}; a new one pushes the process's oldest events out.
 *
 * A resume is exact or refused: it replays every event after the client's cursor, or, when one
 * of them was pushed out, nothing ({@link SessionEvents.resumeRefusal} says why; the gateway
 * answers `410 Gone`). A session's events are released when it closes.
 *
 * @module
 */
import type {
  EventStore,
  StreamId,
  EventId,
} from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

/**
 * What one held event costs beyond its JSON (its entry, ids, its share of the stream's state),
 * counted against `maxBytes`. Measured in a soak (100,000 executions, heap snapshots): about
 * 1.1 KiB of heap per execution for its two events (the priming one and the answer) when the
 * messages were held as objects; held as JSON text, 512 bytes each keeps the count at or above
 * the heap they take, so `maxBytes` bounds memory, not just a count.
 */
export const EVENT_OVERHEAD_BYTES = 512

export interface EventBufferLimits {
  /** Events held per SSE stream; past it the stream's oldest go. */
  maxEventsPerStream: number
  /** Bytes held over every session of the process; past it the oldest events go. */
  maxBytes: number
}

interface Held {
  readonly stream: StreamState
  /**
   * The message as JSON text, parsed again on a replay: the parsed object tree takes several
   * times its JSON in heap, and resumes are rare.
   */
  readonly json: string
  readonly bytes: number
}

interface StreamState {
  readonly id: StreamId
  readonly owner: SessionEvents
  /**
   * The newest event number of this stream that is not held (dropped, or before the stream was
   * known): a resume from a cursor below it would miss events.
   */
  floor: number
  /** Numbers of the held events, oldest first (a Set keeps insertion order). */
  readonly events: Set<number>
}

/** The separator between stream id and event number in an event id. */
const SEP = ':'

/** An event id: the stream's id, `:`, and the event's number (rising over the process). */
function parseEventId(id: string): { streamId: string; seq: number } | undefined {
  const at = id.lastIndexOf(SEP)
  if (at <= 0) return undefined
  const seq = Number(id.slice(at + 1))
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined
  return { streamId: id.slice(0, at), seq }
}

/** A priming event: the SDK stores `{}`, which is no message to replay. */
const isPriming = (json: string): boolean => json === '{}'

/** The events of every session in this process, under one byte budget. */
export class EventBuffer {
  readonly #limits: EventBufferLimits
  /** Every held event by a process-wide number, oldest first. */
  readonly #held = new Map<number, Held>()
  #next = 0
  #bytes = 0

  constructor(limits: EventBufferLimits) {
    if (!Number.isInteger(limits.maxEventsPerStream) || limits.maxEventsPerStream < 1)
      throw new TypeError('maxEventsPerStream must be a positive integer')
    if (!Number.isInteger(limits.maxBytes) || limits.maxBytes < 1)
      throw new TypeError('maxBytes must be a positive integer')
    this.#limits = { ...limits }
  }

  /** Bytes held now, as counted against `maxBytes`. */
  get bytes(): number {
    return this.#bytes
  }

  /** Events held now, over every session. */
  get size(): number {
    return this.#held.size
  }

  /** A store for one session (the SDK's `EventStore`); `release()` it when the session closes. */
  session(): SessionEvents {
    return new SessionEvents(this)
  }

  /** @internal The number the next event gets (numbers rise over the whole process). */
  get nextNumber(): number {
    return this.#next
  }

  /** @internal An event number for an event that is not held. */
  issue(): number {
    return this.#next++
  }

  /** @internal Holds `message` on `stream`, then drops the oldest events past the limits. */
  hold(stream: StreamState, message: JSONRPCMessage): number {
    const n = this.#next++
    const json = JSON.stringify(message)
    const bytes = Buffer.byteLength(json) + EVENT_OVERHEAD_BYTES
    this.#held.set(n, { stream, json, bytes })
    stream.events.add(n)
    this.#bytes += bytes
    while (stream.events.size > this.#limits.maxEventsPerStream) {
      this.#drop(stream.events.values().next().value!)
    }
    while (this.#bytes > this.#limits.maxBytes) {
      this.#drop(this.#held.keys().next().value!)
    }
    return n
  }

  /** @internal */
  get(n: number): Held | undefined {
    return this.#held.get(n)
  }

  /** @internal Drops every event of `streams`. */
  release(streams: Iterable<StreamState>): void {
    for (const stream of streams) for (const n of [...stream.events]) this.#drop(n)
  }

  #drop(n: number): void {
    const held = this.#held.get(n)
    if (held === undefined) return
    this.#held.delete(n)
    this.#bytes -= held.bytes
    const { stream } = held
    stream.events.delete(n)
    stream.floor = Math.max(stream.floor, n)
    // A stream with nothing left is forgotten: a resume on it is refused either way.
    if (stream.events.size === 0) stream.owner.forget(stream)
  }
}

/** One session's streams: the SDK 1.x `EventStore` of its transport. */
export class SessionEvents implements EventStore {
  readonly #buffer: EventBuffer
  readonly #streams = new Map<StreamId, StreamState>()
  #released = false

  /** @internal Use `EventBuffer.session()`. */
  constructor(buffer: EventBuffer) {
    this.#buffer = buffer
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // After release (a late send on a closed session) an event gets an id and is not held.
    if (this.#released) return `${streamId}${SEP}${this.#buffer.issue()}`
    let stream = this.#streams.get(streamId)
    if (stream === undefined) {
      stream = { id: streamId, owner: this, floor: this.#buffer.nextNumber - 1, events: new Set() }
      this.#streams.set(streamId, stream)
    }
    return `${streamId}${SEP}${this.#buffer.hold(stream, message)}`
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    const parsed = parseEventId(eventId)
    return parsed !== undefined && this.#streams.has(parsed.streamId) ? parsed.streamId : undefined
  }

  /**
   * Why a resume after `eventId` cannot be exact, or undefined when it can: every event after it
   * is still held. Ask before handing the request to the transport.
   */
  resumeRefusal(eventId: string): string | undefined {
    const parsed = parseEventId(eventId)
    const stream = parsed === undefined ? undefined : this.#streams.get(parsed.streamId)
    if (parsed === undefined || stream === undefined)
      return 'no event of that stream is held (an unknown id, or all of its events were dropped)'
    if (parsed.seq >= this.#buffer.nextNumber) return 'no such event was sent'
    if (parsed.seq < stream.floor)
      return 'events sent after it were dropped to stay within gateway.resumability limits'
    return undefined
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const refusal = this.resumeRefusal(lastEventId)
    // The gateway asks `resumeRefusal` first; this is a race with an eviction in between.
    if (refusal !== undefined) throw new Error(`cannot resume after ${lastEventId}: ${refusal}`)
    const { streamId, seq } = parseEventId(lastEventId)!
    const stream = this.#streams.get(streamId)!
    for (const n of [...stream.events]) {
      if (n <= seq) continue
      const held = this.#buffer.get(n)
      if (held !== undefined && !isPriming(held.json))
        await send(`${streamId}${SEP}${n}`, JSON.parse(held.json) as JSONRPCMessage)
    }
    return streamId
  }

  /** Drops every event of this session; later events get ids and are not held. Idempotent. */
  release(): void {
    this.#released = true
    this.#buffer.release([...this.#streams.values()])
    this.#streams.clear()
  }

  /** Events this session holds now. */
  get size(): number {
    let n = 0
    for (const s of this.#streams.values()) n += s.events.size
    return n
  }

  /** @internal */
  forget(stream: StreamState): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id)
  }
}
