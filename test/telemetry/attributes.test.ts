/**
 * The span attribute allowlist (CRD-06): nothing outside it reaches a span; content only on opt-in.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import {
  ALLOWED_ATTRIBUTES,
  MAX_ATTRIBUTE_CHARS,
  configureAttributes,
  filterAttributes,
  type SafeAttributes,
} from '../../src/telemetry/index.js'

const CANARY = 'CANARY-7f3e-secret-token'
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`

afterEach(() => configureAttributes({}))

describe('filterAttributes', () => {
  it('CRD-06 drops every key outside the allowlist (code, args, tokens, headers)', () => {
    const hostile = {
      code: `return "${CANARY}"`,
      args: { password: CANARY },
      authorization: `Bearer ${CANARY}`,
      subject_token: CANARY,
      access_token: CANARY,
      cookie: `sid=${CANARY}`,
      'http.request.header.authorization': CANARY,
      'gen_ai.tool.name': 'find',
    } as unknown as SafeAttributes
    expect(filterAttributes(hostile)).toEqual({ 'gen_ai.tool.name': 'find' })
  })

  it('CRD-06 drops content keys unless captureContent is on', () => {
    const attrs: SafeAttributes = {
      'sluice.code': `return "${CANARY}"`,
      'gen_ai.tool.call.arguments': { q: CANARY },
      'gen_ai.tool.call.result': CANARY,
      'sluice.args.sha256': sha('x'),
    }
    expect(filterAttributes(attrs)).toEqual({ 'sluice.args.sha256': sha('x') })
    configureAttributes({ captureContent: true, maxContentChars: 10 })
    expect(filterAttributes(attrs)).toEqual({
      'sluice.code': 'return "CA…',
      'gen_ai.tool.call.arguments': '{"q":"CANA…',
      'gen_ai.tool.call.result': 'CANARY-7f3…',
      'sluice.args.sha256': sha('x'),
    })
  })

  it('hashes enduser.id by default, and exports it plain or not at all when configured', () => {
    expect(filterAttributes({ 'enduser.id': 'alice@example.com' })).toEqual({
      'enduser.id': sha('alice@example.com'),
    })
    configureAttributes({ enduserId: 'plain' })
    expect(filterAttributes({ 'enduser.id': 'alice@example.com' })).toEqual({
      'enduser.id': 'alice@example.com',
    })
    configureAttributes({ enduserId: 'omit' })
    expect(filterAttributes({ 'enduser.id': 'alice@example.com' })).toEqual({})
  })

  it('always hashes mcp.session.id', () => {
    configureAttributes({ captureContent: true, enduserId: 'plain' })
    expect(filterAttributes({ 'mcp.session.id': 'sess-1' })).toEqual({
      'mcp.session.id': sha('sess-1'),
    })
  })

  it('drops values of the wrong kind', () => {
    const attrs = {
      'sluice.code.bytes': '12',
      'sluice.call.count': 1.5,
      'gen_ai.tool.name': { evil: CANARY },
      'sluice.args.bytes': 7,
    } as unknown as SafeAttributes
    expect(filterAttributes(attrs)).toEqual({ 'sluice.args.bytes': 7 })
  })

  it('keeps a string of MAX_ATTRIBUTE_CHARS whole and cuts one char longer', () => {
    const atCap = 'a'.repeat(MAX_ATTRIBUTE_CHARS)
    expect(filterAttributes({ 'sluice.policy.rule_id': atCap })).toEqual({
      'sluice.policy.rule_id': atCap,
    })
    expect(filterAttributes({ 'sluice.policy.rule_id': `${atCap}b` })).toEqual({
      'sluice.policy.rule_id': `${atCap}…`,
    })
  })

  it('lists the MCP and GenAI convention keys sluice emits', () => {
    expect(Object.keys(ALLOWED_ATTRIBUTES)).toEqual(
      expect.arrayContaining([
        'mcp.method.name',
        'gen_ai.operation.name',
        'gen_ai.tool.name',
        'gen_ai.tool.call.id',
        'error.type',
        'server.address',
      ]),
    )
  })

  it('rejects a bad policy', () => {
    expect(() => configureAttributes({ enduserId: 'clear' as 'plain' })).toThrow(
      new TypeError('enduserId must be hash, plain or omit'),
    )
  })
})
