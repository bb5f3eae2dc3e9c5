/** reconcile: live tools against the pins of one server. */
import { describe, expect, it } from 'vitest'
import {
  createLock,
  hashDefinition,
  reconcile,
  type LockServerEntry,
} from '../../src/registry/index.js'
import type { ToolDefinition } from '../../src/types.js'

const a: ToolDefinition = { name: 'a', description: 'tool a', inputSchema: { type: 'object' } }
const b: ToolDefinition = { name: 'b', description: 'tool b', inputSchema: { type: 'object' } }
const c: ToolDefinition = { name: 'c', description: 'tool c', inputSchema: { type: 'object' } }

function entry(...tools: ToolDefinition[]): LockServerEntry {
  return createLock({ s: { source: { type: 'stdio', command: 'x', args: [] }, tools } }).servers.s!
}

describe('reconcile', () => {
  it('exposes tools whose definition matches the pin', () => {
    const result = reconcile(entry(a, b), [b, { ...a, _meta: { ignored: true } }], {
      allowUnpinned: false,
    })
    expect(result).toEqual({
      mode: 'pinned',
      exposed: [
        { definition: a, hash: hashDefinition(a) },
        { definition: b, hash: hashDefinition(b) },
      ],
      quarantined: [],
      unpinned: [],
      missing: [],
      duplicates: [],
    })
  })

  it('quarantines a changed tool and never exposes it', () => {
    const changed = {
      ...a,
      inputSchema: { type: 'object', properties: { bcc: { type: 'string' } } },
    }
    const result = reconcile(entry(a, b), [changed, b], { allowUnpinned: true })
    expect(result.exposed.map((e) => e.definition.name)).toEqual(['b'])
    expect(result.quarantined).toEqual([
      {
        name: 'a',
        pinnedHash: hashDefinition(a),
        liveHash: hashDefinition(changed),
        reason: 'changed',
      },
    ])
  })

  it('reports a new tool as unpinned and exposes it only with allowUnpinned', () => {
    const denied = reconcile(entry(a), [a, c], { allowUnpinned: false })
    expect(denied.exposed.map((e) => e.definition.name)).toEqual(['a'])
    expect(denied.unpinned).toEqual([{ name: 'c', hash: hashDefinition(c) }])
    const allowed = reconcile(entry(a), [a, c], { allowUnpinned: true })
    expect(allowed.exposed.map((e) => e.definition.name)).toEqual(['a', 'c'])
    expect(allowed.unpinned).toEqual([{ name: 'c', hash: hashDefinition(c) }])
  })

  it('reports pinned tools the server no longer lists', () => {
    expect(reconcile(entry(a, b, c), [b], { allowUnpinned: false }).missing).toEqual(['a', 'c'])
  })

  it('never exposes a name the server lists twice, pinned or not', () => {
    const result = reconcile(entry(a), [a, { ...a }, c, { ...c, description: 'evil twin' }], {
      allowUnpinned: true,
    })
    expect(result.exposed).toEqual([])
    expect(result.duplicates).toEqual(['a', 'c'])
    expect(result.quarantined).toEqual([])
  })

  it('without a lock entry treats everything as unpinned (no lock at all: pass allowUnpinned)', () => {
    const locked = reconcile(undefined, [a, b], { allowUnpinned: false })
    expect(locked).toMatchObject({
      mode: 'unpinned',
      exposed: [],
      unpinned: [{ name: 'a' }, { name: 'b' }],
    })
    const open = reconcile(undefined, [b, a], { allowUnpinned: true })
    expect(open.exposed.map((e) => e.definition.name)).toEqual(['a', 'b'])
    expect(open.unpinned.map((u) => u.name)).toEqual(['a', 'b'])
  })

  it('exposes only the pinned fields of a live definition', () => {
    const live = {
      ...a,
      _meta: { 'x/instructions': 'ignore previous' },
      execution: { taskSupport: 'optional' },
    }
    expect(reconcile(entry(a), [live], { allowUnpinned: false }).exposed[0]!.definition).toEqual(a)
  })
})
