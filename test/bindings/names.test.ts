import { describe, expect, it } from 'vitest'
import {
  assignIdentifiers,
  buildManifest,
  generateDeclarations,
  sanitizeIdentifier,
  type NamedTool,
} from '../../src/bindings/index.js'
import { demoTools, tool } from './helpers.js'

const named = (server: string, name: string): NamedTool => ({
  server,
  name,
  definition: { name, inputSchema: { type: 'object' } },
})

describe('sanitizeIdentifier', () => {
  it('maps punctuation to underscores', () => {
    expect(sanitizeIdentifier('get-sum')).toBe('get_sum')
    expect(sanitizeIdentifier('a.b/c-d')).toBe('a_b_c_d')
    expect(sanitizeIdentifier('read_graph')).toBe('read_graph')
    expect(sanitizeIdentifier('getSum')).toBe('getSum')
  })

  it('prefixes a leading digit', () => {
    expect(sanitizeIdentifier('1x')).toBe('_1x')
    expect(sanitizeIdentifier('9-lives')).toBe('_9_lives')
  })

  it('suffixes reserved words', () => {
    expect(sanitizeIdentifier('delete')).toBe('delete_')
    expect(sanitizeIdentifier('class')).toBe('class_')
    expect(sanitizeIdentifier('await')).toBe('await_')
    expect(sanitizeIdentifier('eval')).toBe('eval_')
  })

  it('TP-07 suffixes prototype names instead of exposing them', () => {
    expect(sanitizeIdentifier('__proto__')).toBe('__proto___')
    expect(sanitizeIdentifier('constructor')).toBe('constructor_')
    expect(sanitizeIdentifier('prototype')).toBe('prototype_')
    expect(sanitizeIdentifier('toString')).toBe('toString_')
    expect(sanitizeIdentifier('hasOwnProperty')).toBe('hasOwnProperty_')
    expect(sanitizeIdentifier('then')).toBe('then_')
  })

  it('TP-07 rejects names outside the alphabet', () => {
    for (const bad of [
      'a"];evil();//',
      'has space',
      'homoglyph\u0430',
      '',
      'semi;colon',
      'tab\t',
      'new\nline',
      'émoji',
    ]) {
      expect(sanitizeIdentifier(bad)).toBeUndefined()
    }
  })

  it('accepts 128 characters and rejects 129', () => {
    expect(sanitizeIdentifier('a'.repeat(128))).toBe('a'.repeat(128))
    expect(sanitizeIdentifier('a'.repeat(129))).toBeUndefined()
  })
})

describe('assignIdentifiers', () => {
  it('assigns identifiers to the demo servers without problems, sorted', () => {
    const tools = demoTools()
    expect(tools.find((t) => t.name === 'get-sum')?.ident).toBe('get_sum')
    expect(tools.map((t) => t.server)).toEqual([...tools.map((t) => t.server)].sort())
  })

  it('reports a collision after sanitising as an error naming both tools, and exposes neither', () => {
    const { tools, problems } = assignIdentifiers([
      named('s', 'get-sum'),
      named('s', 'get_sum'),
      named('s', 'ok'),
    ])
    expect(tools.map((t) => t.name)).toEqual(['ok'])
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'NAME_COLLISION',
        severity: 'error',
        message:
          'tools "get-sum" and "get_sum" of server "s" all become tools.s.get_sum; neither is exposed',
      }),
    ])
  })

  it('reports a tool listed twice', () => {
    const { tools, problems } = assignIdentifiers([named('s', 'x'), named('s', 'x')])
    expect(tools).toEqual([])
    expect(problems[0]?.message).toBe('server "s" lists tool "x" 2 times; it is not exposed')
  })

  it('TP-07 reports case duplicates as errors but keeps both distinct identifiers', () => {
    const { tools, problems } = assignIdentifiers([named('s', 'getSum'), named('s', 'getsum')])
    expect(tools.map((t) => t.ident)).toEqual(['getSum', 'getsum'])
    expect(problems).toEqual([
      {
        code: 'CASE_DUPLICATE',
        severity: 'error',
        tool: 's.getSum, s.getsum',
        message: 'tools "getSum" and "getsum" of server "s" differ only by case',
      },
    ])
  })

  it('TP-07 drops invalid names with a quoted, cut label', () => {
    const { tools, problems } = assignIdentifiers([named('s', 'a"];evil();//'), named('s', 'fine')])
    expect(tools.map((t) => t.name)).toEqual(['fine'])
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'INVALID_NAME',
        message:
          '"s.a\\"];evil();//" is not exposed: a name must be 1 to 128 characters of A-Z a-z 0-9 _ . - /',
      }),
    ])
  })

  it('checks server names the same way', () => {
    const { tools, problems } = assignIdentifiers([
      named('my-srv', 'a'),
      named('my_srv', 'b'),
      named('bad server', 'c'),
    ])
    expect(tools).toEqual([])
    expect(problems.map((p) => p.code).sort()).toEqual(['INVALID_NAME', 'NAME_COLLISION'])
    expect(problems.find((p) => p.code === 'NAME_COLLISION')?.message).toBe(
      'servers "my-srv" and "my_srv" all become tools.my_srv; rename one',
    )
  })
})

describe('buildManifest', () => {
  it('maps guest identifiers to upstream names per server', () => {
    const manifest = buildManifest(demoTools(['everything', 'memory']))
    expect(manifest.everything?.get_sum).toBe('get-sum')
    expect(manifest.memory?.read_graph).toBe('read_graph')
    expect(Object.keys(manifest).sort()).toEqual(['everything', 'memory'])
  })

  it('uses null-prototype maps and the sanitised server identifier', () => {
    const manifest = buildManifest([tool('my-server', '__proto__', {}, '__proto___')])
    expect(Object.getPrototypeOf(manifest)).toBeNull()
    expect(Object.getPrototypeOf(manifest.my_server)).toBeNull()
    expect(JSON.parse(JSON.stringify(manifest))).toEqual({ my_server: { __proto___: '__proto__' } })
  })

  it('leaves out exactly the tools the declarations leave out', () => {
    const tools = [
      tool('s', 'ok'),
      tool('s', 'a"];evil();//', {}, 'evil'),
      tool('s', 'x', {}, 'bad ident'),
      tool('s', 'y', {}, 'ok'),
    ]
    expect(JSON.parse(JSON.stringify(buildManifest(tools)))).toEqual({ s: { ok: 'ok' } })
    const { problems } = generateDeclarations(tools)
    expect(problems.map((p) => p.code)).toEqual(['INVALID_NAME', 'INVALID_NAME', 'NAME_COLLISION'])
  })
})
