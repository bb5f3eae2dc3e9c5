/**
 * Hostile authorisation tests at the policy layer (AUTHZ-04, -05, -06, -11, -15): argument rules
 * hold against crafted inputs, CEL failures deny, and listing agrees with the per-call decision.
 * Fuzzing uses a seeded generator, so a failure reproduces.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { loadPolicies, type PolicySet } from '../../src/policy/index.js'
import type { Principal } from '../../src/types.js'
import { mulberry32 } from '../helpers/prng.js'
import { tempDir } from '../policy/helpers.js'

const tmp = tempDir('sluice-authz-policy-')
afterAll(() => tmp.cleanup())
let fileCount = 0
function policy(yaml: string): PolicySet {
  fileCount += 1
  return loadPolicies([tmp.write(`p${fileCount}.yaml`, yaml)])
}

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!

const alice: Principal = {
  sub: 'alice',
  iss: 'local',
  scopes: ['mail:send'],
  claims: {},
  authMethod: 'local',
}
const toolOf = (server: string, name: string, annotations: Record<string, unknown> = {}) => ({
  server,
  name,
  annotations,
  hash: 'sha256:x',
})
const decide = (set: PolicySet, t: ReturnType<typeof toolOf>, args: Record<string, unknown>) =>
  set.decide({ principal: alice, tool: t, args, execution: { id: 'e', callCount: 0 } })

describe('AUTHZ-04 argument constraints on e-mail recipients', () => {
  // One recipient, canonical form, inside corp.com; no other arguments than the schema's.
  const set = policy(`rules:
  - id: mail
    effect: allow
    when: tool.name == "send_email" && "mail:send" in principal.scopes
  - id: mail-inside-corp
    effect: deny
    when: >
      tool.name == "send_email" &&
      !(args.all(k, k in ["to", "subject", "body"]) &&
        type(args.to) == string &&
        args.to.size() <= 254 &&
        args.to.matches("^[a-z0-9._+-]+@corp[.]com$"))
`)
  const mail = toolOf('mail', 'send_email')

  it('allows a plain corp.com recipient', () => {
    expect(decide(set, mail, { to: 'bob@corp.com', subject: 'hi' }).effect).toBe('allow')
  })

  const hostile: Array<[string, Record<string, unknown>]> = [
    ['a comma list ending in @corp.com', { to: 'x@evil.com,@corp.com' }],
    ['a newline list ending in @corp.com', { to: 'x@evil.com\n@corp.com' }],
    ['an array where a string belongs', { to: ['bob@corp.com'] }],
    ['an array smuggling a second recipient', { to: ['bob@corp.com', 'x@evil.com'] }],
    ['an object where a string belongs', { to: { address: 'bob@corp.com' } }],
    ['a number where a string belongs', { to: 42 }],
    ['null', { to: null }],
    ['a missing recipient', { subject: 'hi' }],
    ['an unexpected bcc', { to: 'bob@corp.com', bcc: 'x@evil.com' }],
    ['upper-case domain (not canonical)', { to: 'bob@CORP.COM' }],
    ['a homoglyph domain (Greek omicron)', { to: 'bob@corp.c\u03bfm' }],
    ['an IDN/punycode look-alike', { to: 'bob@xn--crp-2na.com' }],
    ['a quoted local part', { to: '"x@evil.com"@corp.com' }],
    ['a subdomain of an evil domain', { to: 'bob@corp.com.evil.com' }],
    ['a trailing NUL', { to: 'bob@corp.com\u0000' }],
    ['a display name', { to: 'Bob <x@evil.com> bob@corp.com' }],
  ]
  for (const [what, args] of hostile) {
    it(`denies ${what}`, () => {
      const d = decide(set, mail, args)
      expect(d.effect).toBe('deny')
      expect(d.ruleId).toBe('mail-inside-corp')
    })
  }

  it('fuzz: every allowed recipient is exactly one corp.com address (seeded, 3000 inputs)', () => {
    const r = mulberry32(0x5eed04)
    const parts = [
      'bob',
      'x',
      '@',
      'corp.com',
      'evil.com',
      ',',
      ';',
      '\n',
      ' ',
      '"',
      '<',
      '>',
      '.',
      'CORP',
      '\u03bf',
      '%40',
      '\\',
      '\u0000',
      '+tag',
      '-',
    ]
    const strict = /^[a-z0-9._+-]+@corp\.com$/
    let allowed = 0
    for (let i = 0; i < 3000; i++) {
      // A valid address with random hostile parts before and after it (often none).
      const noise = (): string =>
        Array.from({ length: r() < 0.4 ? 0 : 1 + Math.floor(r() * 3) }, () => pick(r, parts)).join(
          '',
        )
      const to = `${noise()}bob@corp.com${noise()}`
      const value: unknown = r() < 0.1 ? [to] : to
      const d = decide(set, mail, { to: value })
      if (d.effect === 'allow') {
        allowed += 1
        expect(typeof value, JSON.stringify(value)).toBe('string')
        expect(strict.test(value as string), JSON.stringify(value)).toBe(true)
        expect((value as string).split('@')).toHaveLength(2)
      }
    }
    expect(allowed).toBeGreaterThan(0)
  })
})

describe('AUTHZ-05 path and URL prefix policies', () => {
  const demo = loadPolicies([new URL('../../policies/demo.yaml', import.meta.url).pathname])
  const carol: Principal = {
    sub: 'carol',
    iss: 'local',
    scopes: ['files:write'],
    claims: {},
    authMethod: 'local',
  }
  const write = (path: unknown) =>
    demo.decide({
      principal: carol,
      tool: toolOf('filesystem', 'write_file'),
      args: { path, content: 'x' },
    })

  it('allows a canonical path inside notes/', () => {
    expect(write('notes/today.md').effect).toBe('allow')
  })

  for (const path of [
    '../notes/x',
    'notes/../../etc/passwd',
    'notes/..',
    'notes/%2e%2e/x',
    'notes/%252e%252e/x',
    'notes\\..\\x',
    'notes//x',
    '//host/share',
    '/etc/passwd',
    '~/notes/x',
    'notes/x\u0000.md',
    'notes/x\r\n',
    'C:\\notes\\x',
    'file:///etc/passwd',
    '',
    'notes',
    ['notes/x'],
    7,
  ]) {
    it(`denies the demo write to ${JSON.stringify(path)}`, () => {
      expect(write(path)).toMatchObject({ effect: 'deny' })
    })
  }

  it('fuzz: every allowed demo write resolves inside notes/ (seeded, 3000 inputs)', () => {
    const r = mulberry32(0x5eed05)
    const parts = [
      'notes',
      '/',
      '..',
      '.',
      'a',
      '%2e',
      '%2f',
      '\\',
      '~',
      ':',
      '\u0000',
      '\n',
      'x.md',
      '//',
    ]
    let allowed = 0
    for (let i = 0; i < 3000; i++) {
      const path = Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(r, parts)).join('')
      if (write(path).effect !== 'allow') continue
      allowed += 1
      const segments = path.split('/')
      expect(segments[0], path).toBe('notes')
      expect(segments.includes('..'), path).toBe(false)
      expect(/[\\%\u0000-\u001f]/.test(path), path).toBe(false)
      expect(new URL(path, 'file:///root/').pathname.startsWith('/root/notes/'), path).toBe(true)
    }
    expect(allowed).toBeGreaterThan(0)
  })

  // CEL has no URL parser, so a URL rule compares a canonical prefix that ends with the slash after
  // the host and refuses everything a URL parser could read as userinfo or another host.
  const urls = policy(`rules:
  - id: fetch
    effect: allow
    when: tool.name == "fetch"
  - id: fetch-only-corp
    effect: deny
    when: >
      tool.name == "fetch" &&
      !(type(args.url) == string &&
        args.url.startsWith("https://corp.com/") &&
        !args.url.matches("[@\\\\\\\\\\\\x00-\\\\x20%]"))
`)
  const fetchTool = toolOf('web', 'fetch')

  it('allows a URL on the corp.com origin', () => {
    expect(decide(urls, fetchTool, { url: 'https://corp.com/docs/a' }).effect).toBe('allow')
  })

  for (const url of [
    'http://corp.com@evil.com/',
    'https://corp.com@evil.com/',
    'https://corp.com.evil.com/',
    'https://corp.com\\@evil.com/',
    '//corp.com/',
    'https://evil.com/https://corp.com/',
    'https://corp.com:443@evil.com/',
    'https://corp.com/%2e%2e/%2e%2e/',
    'https://corp.com/ x',
  ]) {
    it(`denies the URL ${url}`, () => {
      expect(decide(urls, fetchTool, { url }).effect).toBe('deny')
    })
  }

  it('fuzz: every allowed URL has the origin https://corp.com (seeded, 3000 inputs)', () => {
    const r = mulberry32(0x5eed55)
    const parts = [
      'https://',
      'corp.com',
      '/',
      '@',
      'evil.com',
      ':443',
      '\\',
      '.',
      '%2f',
      '?',
      '#',
      'a',
      ' ',
    ]
    let allowed = 0
    for (let i = 0; i < 3000; i++) {
      const url = Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(r, parts)).join('')
      if (decide(urls, fetchTool, { url }).effect !== 'allow') continue
      allowed += 1
      expect(new URL(url).origin, url).toBe('https://corp.com')
    }
    expect(allowed).toBeGreaterThan(0)
  })
})

describe('AUTHZ-06 number and type confusion', () => {
  const set = policy(`rules:
  - id: pay
    effect: allow
    when: tool.name == "pay"
  - id: big-pay-needs-a-human
    effect: approve
    when: tool.name == "pay" && args.amount > 1000
  - id: amount-is-a-positive-int
    effect: deny
    when: tool.name == "pay" && !(type(args.amount) == int && args.amount > 0 && args.amount <= 1000000)
`)
  const pay = toolOf('payments', 'pay')

  it('allows a small whole amount and asks a human for a large one', () => {
    expect(decide(set, pay, { amount: 10 }).effect).toBe('allow')
    expect(decide(set, pay, { amount: 5000 }).effect).toBe('approve')
  })

  const hostile: Array<[string, unknown]> = [
    ['"1e9" as a string', '1e9'],
    ['"1500" as a string', '1500'],
    ['-1', -1],
    ['0', 0],
    ['a fraction', 10.5],
    ['2^53 + 1 (not exactly representable, a double)', 2 ** 53 + 1],
    ['1e300', 1e300],
    ['a value over the limit', 1000001],
    ['true', true],
    ['null', null],
    ['a list', [10]],
    ['a map', { value: 10 }],
  ]
  for (const [what, amount] of hostile) {
    it(`denies ${what}`, () => {
      expect(decide(set, pay, { amount }).effect).toBe('deny')
    })
  }

  it('denies values JSON cannot carry: NaN, Infinity, a BigInt outside int64', () => {
    for (const amount of [Number.NaN, Number.POSITIVE_INFINITY, -Infinity, 2n ** 64n]) {
      expect(decide(set, pay, { amount })).toMatchObject({
        effect: 'deny',
        ruleId: 'invalid-input',
      })
    }
  })

  it('accepts an in-range BigInt as an int', () => {
    expect(decide(set, pay, { amount: 10n }).effect).toBe('allow')
  })

  it('compares int and double across types, so a fractional amount cannot dodge approval', () => {
    const loose = policy(`rules:
  - id: pay
    effect: allow
    when: tool.name == "pay"
  - id: big
    effect: approve
    when: tool.name == "pay" && args.amount > 1000
`)
    expect(decide(loose, pay, { amount: 1000.5 }).effect).toBe('approve')
    expect(decide(loose, pay, { amount: 1001 }).effect).toBe('approve')
    expect(decide(loose, pay, { amount: '5000' }).effect).toBe('deny')
  })
})

describe('AUTHZ-11 CEL failures deny', () => {
  const failures: Array<[string, string]> = [
    ['a missing field', 'args.missing == 1'],
    ['no_such_field on a typed variable at run time', 'principal.tenant == "acme"'],
    ['a type error', 'args.s > 1'],
    ['integer overflow', 'args.n * 9223372036854775807 > 0'],
    ['division by zero', 'args.n / 0 > 0'],
    ['modulo by zero', 'args.n % 0 > 0'],
    ['a bad conversion', 'int(args.s) > 0'],
    ['an index out of range', 'args.list[5] == 1'],
  ]
  for (const [what, when] of failures) {
    it(`denies when a deny rule hits ${what}, with the rule id and "evaluation error"`, () => {
      const set = policy(`rules:
  - id: all
    effect: allow
    when: "true"
  - id: guard
    effect: deny
    when: ${JSON.stringify(when)}
`)
      const d = decide(set, toolOf('s', 't'), { s: 'abc', n: 2, list: [1] })
      expect(d.effect).toBe('deny')
      expect(d.ruleId).toBe('guard')
      expect(d.reason).toContain('evaluation error')
    })

    it(`never allows through an allow rule that hits ${what}`, () => {
      const set = policy(
        `rules:\n  - id: only\n    effect: allow\n    when: ${JSON.stringify(when)}\n`,
      )
      expect(decide(set, toolOf('s', 't'), { s: 'abc', n: 2, list: [1] }).effect).toBe('deny')
    })
  }
})

describe('AUTHZ-15 listing agrees with the dispatcher', () => {
  const atoms = {
    plain: [
      'tool.server == "a"',
      'tool.server == "b"',
      'tool.name == "x"',
      'tool.name == "y"',
      '"s1" in principal.scopes',
      '"s2" in principal.scopes',
      'principal.tenant == "t"', // an error when the principal has no tenant
      'tool.annotations.ro == true', // an error when the tool has no such annotation
    ],
    args: ['args.n > 5', 'args.n == 0', 'has(args.n)', 'args.s.startsWith("a")'],
  }
  const expr = (r: () => number, withArgs: boolean, depth = 0): string => {
    const roll = r()
    if (depth >= 2 || roll < 0.4) return pick(r, withArgs && r() < 0.4 ? atoms.args : atoms.plain)
    if (roll < 0.55) return `!(${expr(r, withArgs, depth + 1)})`
    return `(${expr(r, withArgs, depth + 1)}) ${r() < 0.5 ? '&&' : '||'} (${expr(r, withArgs, depth + 1)})`
  }
  const randomPolicy = (r: () => number, withArgs: boolean): string => {
    const n = 1 + Math.floor(r() * 4)
    const rules = Array.from({ length: n }, (_, i) => {
      const effect = pick(r, ['allow', 'allow', 'approve', 'deny'])
      return `  - id: r${i}\n    effect: ${effect}\n    when: ${JSON.stringify(expr(r, withArgs))}\n`
    })
    return `rules:\n${rules.join('')}`
  }
  const principals: Principal[] = [
    { sub: 'p0', iss: 'local', scopes: [], claims: {}, authMethod: 'local' },
    { sub: 'p1', iss: 'local', scopes: ['s1'], claims: {}, authMethod: 'local', tenant: 't' },
    { sub: 'p2', iss: 'local', scopes: ['s1', 's2'], claims: {}, authMethod: 'local', tenant: 'u' },
  ]
  const tools = ['a', 'b'].flatMap((server) =>
    ['x', 'y'].flatMap((name) => [
      toolOf(server, name),
      toolOf(server, name, { ro: true }),
      toolOf(server, name, { ro: false }),
    ]),
  )
  const argSamples: Array<Record<string, unknown>> = [
    {},
    { n: 0 },
    { n: 10 },
    { n: 'z' },
    { s: 'abc', n: 6 },
    { s: ['a'] },
  ]
  const runs = (
    set: PolicySet,
    p: Principal,
    t: ReturnType<typeof toolOf>,
    args: Record<string, unknown>,
  ) => {
    const effect = set.decide({
      principal: p,
      tool: t,
      args,
      execution: { id: 'e', callCount: 0 },
    }).effect
    return effect === 'allow' || effect === 'approve'
  }

  it('without argument rules, the listed tools are exactly the tools a call may run (seeded, 300 policies)', () => {
    const r = mulberry32(0x5eed15)
    for (let i = 0; i < 300; i++) {
      const text = randomPolicy(r, false)
      const set = policy(text)
      for (const p of principals) {
        for (const t of tools) {
          expect(
            set.canList({ principal: p, tool: t }),
            `${text}\n${p.sub} ${t.server}.${t.name} ${JSON.stringify(t.annotations)}`,
          ).toBe(runs(set, p, t, {}))
        }
      }
    }
  })

  it('with argument rules, every tool a call may run is listed (seeded, 300 policies)', () => {
    const r = mulberry32(0x5eed16)
    for (let i = 0; i < 300; i++) {
      const text = randomPolicy(r, true)
      const set = policy(text)
      for (const p of principals) {
        for (const t of tools) {
          if (!argSamples.some((args) => runs(set, p, t, args))) continue
          expect(
            set.canList({ principal: p, tool: t }),
            `${text}\n${p.sub} ${t.server}.${t.name} ${JSON.stringify(t.annotations)}`,
          ).toBe(true)
        }
      }
    }
  })
})
