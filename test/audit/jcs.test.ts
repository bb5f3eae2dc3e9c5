/**
 * Audit record hashes are RFC 8785 (JCS): any JCS implementation (here the `canonicalize`
 * package as the oracle) recomputes them from the record alone. Chains written before the move,
 * whose hash escaped U+2028 and friends first, still verify.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import canonicalize from 'canonicalize'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AuditLog, GENESIS_HASH, verifyAuditFile } from '../../src/audit/index.js'
import { encodeJsonLine } from '../../src/audit/canonical-json.js'
import {
  hashRecord,
  legacyHashRecord,
  orderRecord,
  recordLineBytes,
  sealRecord,
} from '../../src/audit/record.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-jcs-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`

describe('RFC 8785 record hashes', () => {
  it('every record hash is sha256 of the JCS form of the record without its hash, and prev links', async () => {
    const file = join(dir, 'audit.jsonl')
    const log = await AuditLog.open({ file, fsync: false })
    try {
      await log.append({ type: 'gateway.start' })
      await log.append({
        type: 'call.decision',
        tool: 'crm.find\u2028é漢😀',
        principal: { sub: 'alice', iss: 'https://idp.example.com' },
        decision: 'allow',
        ruleId: 'read-only',
        ms: 12.5,
        callCount: 3,
      })
    } finally {
      await log.close()
    }
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    let prev = GENESIS_HASH
    for (const record of records) {
      const { hash, ...rest } = record
      expect(hash).toBe(sha256(canonicalize(rest)!))
      expect(record.prev).toBe(prev)
      prev = hash as string
    }
  })

  it('the sealed hash is the JCS hash and the line size is known unhashed, for every field shape and an unknown key', () => {
    const odd = 'line\u2028sep \u0085 "quoted" \\ tab\t é 😀'
    const records: Record<string, unknown>[] = [
      { seq: 1, time: '2026-12-07T00:00:00.000Z', type: 'gateway.start', prev: GENESIS_HASH },
      {
        seq: 2,
        time: '2026-12-07T00:00:00.001Z',
        type: 'call.decision',
        executionId: odd,
        principal: { tenant: 't', sub: odd, iss: 'i' },
        tool: 's.t',
        decision: 'allow',
        ms: 1.5,
        callCount: 0,
        tools: ['b', 'a', odd],
        pii: { phone: 2, email: 1 },
        labels: ['egress', 'confidential'],
        torn: { line: 3, bytes: 10, sha256: GENESIS_HASH },
        prev: GENESIS_HASH,
      },
      // A key no record has: the general path, same rule.
      { seq: 3, time: 't', type: 'x', zeta: { b: [1, { d: 1, c: 2 }], a: null }, prev: 'p' },
    ]
    for (const fields of records) {
      const expected = sha256(canonicalize(fields) as string)
      expect(hashRecord(fields)).toBe(expected)
      expect(hashRecord({ ...fields, hash: 'ignored' })).toBe(expected)
      const sealed = sealRecord(fields)
      expect(sealed.record.hash).toBe(expected)
      // What rotation sizes a line by, without hashing it.
      expect(recordLineBytes(fields)).toBe(Buffer.byteLength(sealed.line))
    }
  })

  it('a chain sealed the old way (escapes before hashing) still verifies, and an edit of it does not', async () => {
    const file = join(dir, 'old.jsonl')
    const fields = orderRecord({
      seq: 1,
      time: '2026-11-28T00:00:00.000Z',
      type: 'call.decision',
      tool: 'a\u2028b',
      decision: 'allow',
      prev: GENESIS_HASH,
    })
    const sealed = { ...fields, hash: legacyHashRecord(fields) }
    const { hash: _jcs, ...rest } = sealed
    expect(sealed.hash).not.toBe(sha256(canonicalize(rest)!))
    writeFileSync(file, `${encodeJsonLine(sealed)}\n`)
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 1 })
    writeFileSync(file, `${encodeJsonLine({ ...sealed, decision: 'deny' })}\n`)
    expect(await verifyAuditFile(file)).toMatchObject({
      ok: false,
      error: { reason: 'record hash does not match its content (the record was edited)' },
    })
  })
})
