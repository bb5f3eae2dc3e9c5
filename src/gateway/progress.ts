/**
 * Progress for one request that carried `_meta.progressToken`, on either protocol era.
 *
 * The numbers say how far the execution got: the integer part is the number of inner calls
 * that completed, and each completion is sent as exactly that number (`progress: 3`,
 * `memory.read_graph done (3 calls)`). What happens between two completions (an upstream's own
 * progress, relayed; a wait for a human approval) is sent as a fraction on the way to the next
 * integer: the k-th such notice after `c` completions is `c + k/(k+1)` (c + 0.5, c + 0.667,
 * …), so the numbers rise strictly, as the spec requires, however the notices interleave, and
 * never reach the next completion. No `total`: how many calls a script makes is not known until
 * it ends. An upstream's own numbers (`2/5`) travel in the message, with the tool's name.
 *
 * Best effort: a notification that cannot be sent (the stream is gone) is dropped.
 *
 * @module
 */
import { clipUtf8, stripInvisible } from '../text.js'

/** One `notifications/progress` as both SDKs send it. */
export interface ProgressNotification {
  method: 'notifications/progress'
  params: { progressToken: string | number; progress: number; message: string }
}

/** An upstream's progress for one inner call, as the engine relays it. */
export interface RelayedProgress {
  progress: number
  total?: number
  message?: string
}

/** What the engine reports while one request runs. */
export interface ProgressReporter {
  /** Something between two completed calls, in words (e.g. a wait for approval). */
  note(message: string): void
  /** An upstream reported progress for the inner call `tool` (`server.tool`). */
  upstream(tool: string, progress: RelayedProgress): void
  /** The inner call `tool` completed, either way. */
  done(tool: string, outcome: { ok: boolean; code?: string }): void
}

/** Longest progress message, in UTF-8 bytes. */
export const MAX_PROGRESS_MESSAGE_BYTES = 512
/** Longest tool label inside a message, in UTF-8 bytes (a name the guest made up can be long). */
const MAX_TOOL_LABEL_BYTES = 160

const label = (tool: string): string => clipUtf8(stripInvisible(tool), MAX_TOOL_LABEL_BYTES)

/**
 * A reporter for a request that carried `token`, sending through `notify`; `undefined` when the
 * request carried none (the client did not ask for progress).
 */
export function progressNotifier(
  token: string | number | undefined,
  notify: (notification: ProgressNotification) => Promise<void>,
): ProgressReporter | undefined {
  if (token === undefined) return undefined
  let completed = 0
  /** Notices since the last completion. */
  let between = 0
  let last = -Infinity

  const send = (progress: number, message: string): void => {
    // Past about a million notices between two completions the fraction stops rising in
    // floating point; a notice that would not rise is dropped rather than break the order.
    if (!(progress > last)) return
    last = progress
    notify({
      method: 'notifications/progress',
      params: {
        progressToken: token,
        progress,
        message: clipUtf8(message, MAX_PROGRESS_MESSAGE_BYTES),
      },
    }).catch(() => {
      // The stream may be gone (client disconnected); progress is best effort.
    })
  }
  const notice = (message: string): void => {
    between += 1
    send(completed + between / (between + 1), message)
  }

  return {
    note: (message) => notice(message),
    upstream: (tool, p) => {
      const numbers = p.total === undefined ? `${p.progress}` : `${p.progress}/${p.total}`
      const words = p.message === undefined || p.message === '' ? '' : `: ${p.message}`
      notice(`${label(tool)} progress ${numbers}${words}`)
    },
    done: (tool, outcome) => {
      completed += 1
      between = 0
      const calls = `${completed} ${completed === 1 ? 'call' : 'calls'}`
      send(
        completed,
        outcome.ok
          ? `${label(tool)} done (${calls})`
          : `${label(tool)} failed: ${outcome.code ?? 'error'} (${calls})`,
      )
    },
  }
}
