/**
 * The progress numbers and messages one request gets (src/gateway/progress.ts): the integer part
 * counts completed inner calls, what happens between two completions rises as a fraction toward
 * the next one, and nothing is sent without a token.
 */
import { describe, expect, it } from 'vitest'
import {
  MAX_PROGRESS_MESSAGE_BYTES,
  progressNotifier,
  type ProgressNotification,
} from '../../src/gateway/progress.js'

function collect(token: string | number = 'tok') {
  const sent: ProgressNotification['params'][] = []
  const reporter = progressNotifier(token, async (n) => {
    expect(n.method).toBe('notifications/progress')
    sent.push(n.params)
  })
  return { reporter: reporter!, sent }
}

describe('progressNotifier', () => {
  it('is undefined when the request carried no progress token', () => {
    expect(progressNotifier(undefined, async () => {})).toBeUndefined()
  })

  it('sends completed calls as integers and what happens between them as rising fractions', () => {
    const { reporter, sent } = collect(7)
    reporter.note('waiting for a human to approve rec.pay (rule r)')
    reporter.done('rec.pay', { ok: true })
    reporter.upstream('everything.trigger-long-running-operation', { progress: 1, total: 3 })
    reporter.upstream('everything.trigger-long-running-operation', {
      progress: 2,
      total: 3,
      message: 'halfway',
    })
    reporter.upstream('fs.scan', { progress: 40 })
    reporter.done('everything.trigger-long-running-operation', { ok: true })
    reporter.done('memory.read_graph', { ok: false, code: 'TOOL_DENIED' })
    expect(sent).toEqual([
      {
        progressToken: 7,
        progress: 0.5,
        message: 'waiting for a human to approve rec.pay (rule r)',
      },
      { progressToken: 7, progress: 1, message: 'rec.pay done (1 call)' },
      {
        progressToken: 7,
        progress: 1.5,
        message: 'everything.trigger-long-running-operation progress 1/3',
      },
      {
        progressToken: 7,
        progress: 1 + 2 / 3,
        message: 'everything.trigger-long-running-operation progress 2/3: halfway',
      },
      { progressToken: 7, progress: 1.75, message: 'fs.scan progress 40' },
      {
        progressToken: 7,
        progress: 2,
        message: 'everything.trigger-long-running-operation done (2 calls)',
      },
      { progressToken: 7, progress: 3, message: 'memory.read_graph failed: TOOL_DENIED (3 calls)' },
    ])
  })

  it('rises strictly over many notices between two completions', () => {
    const { reporter, sent } = collect()
    for (let i = 0; i < 10_000; i++) reporter.upstream('a.b', { progress: i })
    reporter.done('a.b', { ok: true })
    expect(sent).toHaveLength(10_001)
    for (let i = 1; i < sent.length; i++)
      expect(sent[i]!.progress).toBeGreaterThan(sent[i - 1]!.progress)
    expect(sent.at(-2)!.progress).toBeLessThan(1)
    expect(sent.at(-1)!.progress).toBe(1)
  })

  it(`cuts a message at ${MAX_PROGRESS_MESSAGE_BYTES} bytes and strips invisible characters from tool names`, () => {
    const { reporter, sent } = collect()
    const fits = 'x'.repeat(MAX_PROGRESS_MESSAGE_BYTES - 'a.b progress 1: '.length)
    reporter.upstream('a.b', { progress: 1, message: fits })
    reporter.upstream('a.b', { progress: 2, message: `${fits}y` })
    reporter.done('a\u202e.b\u200b', { ok: true })
    expect(Buffer.byteLength(sent[0]!.message)).toBe(MAX_PROGRESS_MESSAGE_BYTES)
    expect(sent[0]!.message.endsWith('x')).toBe(true)
    expect(Buffer.byteLength(sent[1]!.message)).toBe(MAX_PROGRESS_MESSAGE_BYTES)
    expect(sent[1]!.message.endsWith('…')).toBe(true)
    expect(sent[2]!.message).toBe('a.b done (1 call)')
  })

  it('drops a notification that cannot be sent and keeps counting', async () => {
    const sent: number[] = []
    let fail = true
    const reporter = progressNotifier('t', async (n) => {
      if (fail) throw new Error('stream gone')
      sent.push(n.params.progress)
    })!
    reporter.done('a.b', { ok: true })
    fail = false
    reporter.done('a.b', { ok: true })
    await Promise.resolve()
    expect(sent).toEqual([2])
  })
})
