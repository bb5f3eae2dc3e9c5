import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_SCHEMA_LIMITS,
  generateDeclarations,
  renderBindingsFile,
  type BindingTool,
} from '../../src/bindings/index.js'
import { checkDeclarations } from '../../src/bindings/typecheck.js'
import { demoTools, schemaFixtures, schemaTools, tool } from './helpers.js'

/** The top-level shape of a generated dts, read through the TypeScript AST. */
function shape(dts: string): {
  aliases: string[]
  servers: Record<string, string[]>
  statements: number
} {
  const file = ts.createSourceFile('tools.d.ts', dts, ts.ScriptTarget.ES2022, true)
  const aliases: string[] = []
  const servers: Record<string, string[]> = {}
  for (const st of file.statements) {
    if (ts.isTypeAliasDeclaration(st)) {
      aliases.push(st.name.text)
      continue
    }
    if (!ts.isVariableStatement(st))
      throw new Error(`unexpected statement: ${ts.SyntaxKind[st.kind]}`)
    const decl = st.declarationList.declarations
    expect(decl).toHaveLength(1)
    expect(st.modifiers?.map((m) => m.kind)).toEqual([ts.SyntaxKind.DeclareKeyword])
    expect((decl[0]!.name as ts.Identifier).text).toBe('tools')
    const type = decl[0]!.type
    if (type === undefined || !ts.isTypeLiteralNode(type))
      throw new Error('tools is not a type literal')
    for (const member of type.members) {
      if (
        !ts.isPropertySignature(member) ||
        member.type === undefined ||
        !ts.isTypeLiteralNode(member.type)
      ) {
        throw new Error('unexpected server member')
      }
      servers[(member.name as ts.Identifier).text] = member.type.members.map((m) => {
        if (!ts.isMethodSignature(m)) throw new Error('unexpected tool member')
        return (m.name as ts.Identifier).text
      })
    }
  }
  return { aliases, servers, statements: file.statements.length }
}

/** Every identifier in the dts (comments and string literals are not identifiers). */
function identifiers(dts: string): Set<string> {
  const file = ts.createSourceFile('tools.d.ts', dts, ts.ScriptTarget.ES2022, true)
  const out = new Set<string>()
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node)) out.add(node.text)
    ts.forEachChild(node, visit)
  }
  visit(file)
  return out
}

describe('generateDeclarations', () => {
  it('compiles the real demo servers with zero errors', () => {
    const { dts, problems, coverage } = generateDeclarations(demoTools())
    expect(checkDeclarations(dts)).toEqual([])
    expect(problems).toEqual([])
    expect(coverage.tools).toBe(36)
    expect(coverage.typedOutputs).toBe(24)
    expect(coverage.unknownOutputs).toContain('everything.get-sum')
    expect(coverage.unknownOutputs).not.toContain('memory.read_graph')
  })

  it.each(schemaFixtures())('compiles schema fixture %s with zero errors', (file) => {
    const { dts } = generateDeclarations(schemaTools(file))
    expect(checkDeclarations(dts)).toEqual([])
  })

  it('declares tools.<server>.<tool> with named input and output types', () => {
    const { dts } = generateDeclarations(demoTools(['memory', 'everything']))
    const s = shape(dts)
    expect(Object.keys(s.servers)).toEqual(['everything', 'memory'])
    expect(s.servers.memory).toEqual([
      'add_observations',
      'create_entities',
      'create_relations',
      'delete_entities',
      'delete_observations',
      'delete_relations',
      'open_nodes',
      'read_graph',
      'search_nodes',
    ])
    expect(s.aliases).toContain('Memory_CreateEntitiesInput')
    expect(s.aliases).toContain('Memory_CreateEntitiesOutput')
    expect(dts).toContain(
      '    read_graph(args?: Memory_ReadGraphInput): Promise<Memory_ReadGraphOutput>',
    )
    expect(dts).toContain(
      '    search_nodes(args: Memory_SearchNodesInput): Promise<Memory_SearchNodesOutput>',
    )
    expect(dts).toContain('    get_sum(args: Everything_GetSumInput): Promise<unknown>')
    expect(dts).toContain('Upstream name: "get-sum".')
  })

  it('puts descriptions, annotations and property docs in JSDoc', () => {
    const { dts } = generateDeclarations(schemaTools('docs.json'))
    expect(dts).toContain('     * Documented tool\n     * First sentence of the description.')
    expect(dts).toMatch(/@destructive\n\s+\* @idempotent\n\s+\* @openWorld/)
    expect(dts).toMatch(/\* A read-only tool\.\n\s+\*\n\s+\* @readonly\n\s+\*\//)
    expect(dts).not.toMatch(/A read-only tool[\s\S]*@destructive[\s\S]*read_only\(/)
    expect(dts).toContain('   * Where to go\n   * @format uri\n   */\n  url: string')
    expect(dts).toContain(
      '   * How many\n   * @integer\n   * @minimum 1\n   * @maximum 10\n   * @default 3\n',
    )
    expect(dts).toContain('@minLength 1')
    expect(dts).toContain('@maxItems 5')
    expect(dts).toContain('@deprecated')
    expect(dts).toContain(
      "@returns No outputSchema: the parsed JSON of the tool's text, else the text itself.",
    )
  })

  it('renders each construct of the schema fixtures', () => {
    const dts = schemaFixtures()
      .map((f) => generateDeclarations(schemaTools(f)).dts)
      .join('\n')
    for (const expected of [
      'sn: string | number',
      'nullableArray: string | null',
      'nullableOpenApi: string | null',
      'nothing?: never',
      '[key: string]: number | string | boolean | undefined',
      '"content-type": string',
      '"__proto__"?: string',
      '"\\"];evil();//"?: string',
      'pair: [string, number]',
      'headAndRest?: [string, ...number[]]',
      'draft4Tuple?: [boolean?, string?]',
      'unions?: Array<string | number>',
      'level?: 1 | 2 | 3.5 | -1',
      'mixed?: "a" | 1 | true | null',
      'fixed: "v1"',
      'nullableEnum?: "on" | "off" | null',
      'id: string | number',
      'type Fx_Refs_Node = {\n  value: string\n  children?: Fx_Refs_Node[]\n}',
      'type Fx_Refs_Json = string | number | Fx_Refs_Json[]',
      'next?: Fx_RefsInput',
      'items: Fx_RefsOut_Item[]',
      'parent?: Fx_RefsOut_Item',
      'escaped?: Fx_Refs_ABC',
      'encoded?: Fx_Refs_ABC',
    ]) {
      expect(dts).toContain(expected)
    }
    expect(dts).toMatch(/both\?: \{\n\s+a: string\n\s+\} & \{\n\s+b: number\n\s+\}/)
    expect(dts).toMatch(/\} & \(\{\n\s+email: unknown\n\s+\} \| \{\n\s+phone: unknown\n\s+\}\)/)
  })

  it('reports what it cannot express, with pointers, and never silently', () => {
    const { problems } = generateDeclarations(schemaTools('unsupported.json'))
    expect(problems.map((p) => `${p.code} ${p.pointer}`)).toEqual([
      'BAD_REF /inputSchema/properties/remote/$ref',
      'BAD_REF /inputSchema/properties/anchor/$ref',
      'BAD_REF /inputSchema/properties/dangling/$ref',
      'BAD_REF /inputSchema/$defs/Loop/$ref',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/negated/not',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/conditional/if',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/conditional/then',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/conditional/else',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/patterned/patternProperties',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/names/propertyNames',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/containing/contains',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/dependent/dependentRequired',
      'UNSUPPORTED_SCHEMA /inputSchema/properties/badType/type',
    ])
    expect(problems.every((p) => p.severity === 'warning' && p.tool === 'fx.unsupported')).toBe(
      true,
    )
    expect(problems[0]?.message).toBe(
      'fx.unsupported /inputSchema/properties/remote/$ref: only local "$ref"s ("#/…") are resolved, never remote ones; emitted unknown',
    )
    expect(problems[4]?.message).toBe(
      'fx.unsupported /inputSchema/properties/negated/not: "not" (negation) cannot be expressed; the emitted type is wider than the schema',
    )
    for (const file of schemaFixtures().filter((f) => f !== 'unsupported.json')) {
      expect(generateDeclarations(schemaTools(file)).problems).toEqual([])
    }
  })

  it('types an output without outputSchema as unknown and lists it in the coverage', () => {
    const { dts, coverage } = generateDeclarations([
      tool('s', 'a'),
      tool('s', 'b', { outputSchema: { type: 'object' } }),
    ])
    expect(dts).toContain('a(args?: S_AInput): Promise<unknown>')
    expect(dts).toContain('b(args?: S_BInput): Promise<S_BOutput>')
    expect(coverage).toEqual({ tools: 2, typedOutputs: 1, unknownOutputs: ['s.a'] })
  })

  it('keeps type names unique when identifiers share a PascalCase form', () => {
    const { dts } = generateDeclarations([tool('s', 'get_sum'), tool('s', 'getSum')])
    expect(shape(dts).aliases).toEqual(['S_GetSumInput', 'S_GetSumInput2'])
    expect(checkDeclarations(dts)).toEqual([])
  })
})

describe('generateDeclarations limits (RES-13)', () => {
  const nested = (depth: number): Record<string, unknown> => {
    // depth counts schemas from the root (1) down to the innermost string.
    let schema: Record<string, unknown> = { type: 'string' }
    for (let i = 1; i < depth; i++) schema = { type: 'object', properties: { x: schema } }
    return schema
  }
  const limitProblems = (t: BindingTool, limits = {}): string[] =>
    generateDeclarations([t], { limits })
      .problems.filter((p) => p.code === 'SCHEMA_LIMIT')
      .map((p) => p.message)

  it('converts a schema nested maxDepth deep and cuts one nested maxDepth + 1 deep', () => {
    const n = DEFAULT_SCHEMA_LIMITS.maxDepth
    expect(limitProblems(tool('s', 't', { inputSchema: nested(n) }))).toEqual([])
    const deep = tool('s', 't', { inputSchema: nested(n + 1) })
    const pointer = `/inputSchema${'/properties/x'.repeat(n)}`
    expect(limitProblems(deep)).toEqual([
      `s.t ${pointer}: schema nesting exceeds maxDepth ${n}; emitted unknown`,
    ])
    expect(checkDeclarations(generateDeclarations([deep]).dts)).toEqual([])
  })

  it('converts maxNodes subschemas and cuts at maxNodes + 1', () => {
    const props = (count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, { type: 'string' }]))
    // The root object is one node, each property one more.
    expect(
      limitProblems(tool('s', 't', { inputSchema: { type: 'object', properties: props(9) } }), {
        maxNodes: 10,
      }),
    ).toEqual([])
    expect(
      limitProblems(tool('s', 't', { inputSchema: { type: 'object', properties: props(10) } }), {
        maxNodes: 10,
      }),
    ).toEqual([
      's.t /inputSchema/properties/p9: schema has more than maxNodes 10 subschemas; the rest is unknown',
    ])
  })

  it('emits maxEnumValues literals and falls back to the base type at maxEnumValues + 1', () => {
    const n = DEFAULT_SCHEMA_LIMITS.maxEnumValues
    const schema = (count: number) => ({
      type: 'object',
      properties: { e: { type: 'string', enum: Array.from({ length: count }, (_, i) => `v${i}`) } },
    })
    const atLimit = generateDeclarations([tool('s', 't', { inputSchema: schema(n) })])
    expect(atLimit.problems).toEqual([])
    expect(atLimit.dts).toContain(`"v${n - 1}"`)
    const over = generateDeclarations([tool('s', 't', { inputSchema: schema(n + 1) })])
    expect(over.dts).toContain('e?: string')
    expect(over.problems.map((p) => p.message)).toEqual([
      `s.t /inputSchema/properties/e/enum: enum has ${n + 1} values, more than maxEnumValues ${n}; emitted its base type`,
    ])
  })

  it('keeps maxDescriptionChars of a description and cuts the rest with an ellipsis', () => {
    const at = generateDeclarations([tool('s', 't', { description: 'x'.repeat(20) })], {
      limits: { maxDescriptionChars: 20 },
    })
    expect(at.dts).toContain(`* ${'x'.repeat(20)}\n`)
    const over = generateDeclarations([tool('s', 't', { description: 'x'.repeat(21) })], {
      limits: { maxDescriptionChars: 20 },
    })
    expect(over.dts).toContain(`* ${'x'.repeat(20)}…\n`)
  })

  it('survives a huge recursive schema without blowing up', () => {
    const defs: Record<string, unknown> = {}
    for (let i = 0; i < 200; i++) {
      defs[`D${i}`] = {
        anyOf: [
          { $ref: `#/$defs/D${(i + 1) % 200}` },
          { type: 'array', items: { $ref: `#/$defs/D${i}` } },
        ],
      }
    }
    const { dts, problems } = generateDeclarations([
      tool('s', 't', { inputSchema: { $defs: defs, $ref: '#/$defs/D0' } }),
    ])
    expect(problems.some((p) => p.code === 'SCHEMA_LIMIT' || p.code === 'BAD_REF')).toBe(true)
    expect(checkDeclarations(dts)).toEqual([])
  })
})

describe('generateDeclarations injection (TP-08)', () => {
  const payloads = [
    '*/ } ; globalThis.x=1; /*',
    '`${globalThis.x=1}`',
    '*/\ndeclare const evil: 1\n/*',
    '\u2028*/ evil() /*',
    '"];evil();//',
    '\\',
    '/**/',
  ]

  it('TP-08 keeps descriptions, titles, defaults and enum values inside comments and strings', () => {
    const tools = payloads.map((p, i) =>
      tool('s', `t${i}`, {
        title: p,
        description: p,
        annotations: { title: p },
        inputSchema: {
          type: 'object',
          title: p,
          description: p,
          properties: {
            [p]: {
              type: 'string',
              description: p,
              default: p,
              format: p,
              enum: [p],
              examples: [p],
            },
          },
          required: [p],
        },
        outputSchema: { type: 'object', properties: { v: { const: p, description: p } } },
      }),
    )
    const { dts } = generateDeclarations(tools)
    expect(checkDeclarations(dts)).toEqual([])
    const s = shape(dts)
    expect(s.servers).toEqual({ s: payloads.map((_, i) => `t${i}`) })
    expect(s.statements).toBe(payloads.length * 2 + 1)
    const ids = identifiers(dts)
    expect(ids.has('evil')).toBe(false)
    expect(ids.has('globalThis')).toBe(false)
  })

  it('TP-08 rejects a tool named a"];evil();// and an unsafe identifier', () => {
    const { dts, problems } = generateDeclarations([
      tool('s', 'a"];evil();//', {}, 'a'),
      tool('s', 'fine', {}, 'x"];evil();//'),
      tool('s"];evil();//', 'fine'),
      tool('s', 'ok'),
    ])
    expect(shape(dts).servers).toEqual({ s: ['ok'] })
    expect(identifiers(dts).has('evil')).toBe(false)
    expect(problems.map((p) => p.code)).toEqual(['INVALID_NAME', 'INVALID_NAME', 'INVALID_NAME'])
    expect(problems[0]?.message).toBe(
      's."a\\"];evil();//" is not exposed: its server name, tool name or identifier is outside the safe alphabet',
    )
  })

  it('TP-08 fuzz: random hostile text never changes the declarations', () => {
    let seed = 42
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const alphabet = [
      '*/',
      '/*',
      '`',
      '${',
      '}',
      '{',
      '"',
      "'",
      '\\',
      '\n',
      '\r',
      '\u2028',
      '\u2029',
      ';',
      'evil()',
      ' ',
      'a',
      '//',
      '<',
      '>',
      '@',
      '\u202e',
      '\u0000',
    ]
    const text = (): string =>
      Array.from(
        { length: 1 + Math.floor(random() * 12) },
        () => alphabet[Math.floor(random() * alphabet.length)],
      ).join('')
    const checked: string[] = []
    for (let i = 0; i < 200; i++) {
      const key = text()
      const t = tool('s', 'f', {
        description: text(),
        title: text(),
        inputSchema: {
          type: 'object',
          description: text(),
          properties: {
            [key]: { type: 'string', description: text(), default: text(), enum: [text(), text()] },
          },
        },
      })
      const { dts } = generateDeclarations([t])
      const s = shape(dts)
      expect(s.servers).toEqual({ s: ['f'] })
      expect(s.aliases).toEqual(['S_FInput'])
      expect(identifiers(dts).has('evil')).toBe(false)
      if (i % 40 === 0) checked.push(dts)
    }
    for (const dts of checked) expect(checkDeclarations(dts)).toEqual([])
  })
})

describe('renderBindingsFile', () => {
  it('stamps the file as generated and adds coverage and header lines', () => {
    const { text, coverage } = renderBindingsFile(demoTools(['everything']), {
      header: 'Pinned in sluice.lock\n*/ line two',
    })
    expect(
      text.startsWith(
        '// generated by `sluice bindings`; do not edit.\n// Pinned in sluice.lock\n// *\\/ line two\n//\n',
      ),
    ).toBe(true)
    expect(text).toContain(
      '// 13 tools from 1 servers; 12 without outputSchema return unknown.\n\ntype Everything_EchoInput',
    )
    expect(coverage.tools).toBe(13)
    expect(checkDeclarations(text)).toEqual([])
  })

  it('is deterministic whatever the input order', () => {
    const tools = demoTools()
    expect(renderBindingsFile([...tools].reverse()).text).toBe(renderBindingsFile(tools).text)
  })
})
