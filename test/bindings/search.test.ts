import { describe, expect, it } from 'vitest'
import {
  compactIndex,
  createSearchIndex,
  fitSearchHits,
  MAX_SEARCH_LIMIT,
  tokenize,
} from '../../src/bindings/index.js'
import { demoTools, tool } from './helpers.js'

const bytes = (s: string): number => new TextEncoder().encode(s).length

describe('tokenize', () => {
  it('splits snake_case, kebab-case and camelCase alike', () => {
    expect(tokenize('read_graph')).toEqual(['read', 'graph'])
    expect(tokenize('read-graph')).toEqual(['read', 'graph'])
    expect(tokenize('readGraph')).toEqual(['read', 'graph'])
    expect(tokenize('HTTPServer v2')).toEqual(['http', 'server', 'v2'])
  })

  it('folds plurals and drops stopwords', () => {
    expect(tokenize('Create the entities of a graph')).toEqual(['create', 'entity', 'graph'])
    expect(tokenize('files and directories')).toEqual(['file', 'directory'])
  })
})

describe('compactIndex', () => {
  it('lists one line per tool with its arguments and first sentence', () => {
    const lines = compactIndex(demoTools(['memory', 'everything'])).split('\n')
    expect(lines).toHaveLength(22)
    expect(lines).toContain('tools.memory.read_graph() — Read the entire knowledge graph')
    expect(lines).toContain(
      'tools.memory.search_nodes({ query }) — Search for nodes in the knowledge graph based on a query',
    )
    expect(lines).toContain(
      'tools.everything.gzip_file_as_resource({ name?, data?, outputType? }) — Compresses a single file using gzip compression.',
    )
  })

  it('cuts a long first sentence at 160 characters', () => {
    const [line] = compactIndex([
      tool('s', 't', { description: `${'word '.repeat(60)}end.` }),
    ]).split('\n')
    expect(line).toMatch(/^tools\.s\.t\(\) — (word ){31}word…$/)
  })
})

describe('createSearchIndex', () => {
  const index = createSearchIndex(demoTools())
  const top = (query: string, limit?: number): string[] =>
    index.search(query, limit).map((h) => `${h.server}.${h.name}`)

  it('ranks by name and description terms', () => {
    expect(top('knowledge graph entities', 2)).toEqual([
      'memory.create_entities',
      'memory.delete_entities',
    ])
    expect(top('read a file')[0]).toBe('filesystem.read_file')
    expect(top('sum two numbers')[0]).toBe('everything.get-sum')
    expect(top('rename or move')[0]).toBe('filesystem.move_file')
  })

  it('puts an exact name first whatever its spelling', () => {
    expect(top('read_graph')[0]).toBe('memory.read_graph')
    expect(top('readGraph')[0]).toBe('memory.read_graph')
    expect(top('get-tiny-image')[0]).toBe('everything.get-tiny-image')
    expect(top('everything.get_sum')[0]).toBe('everything.get-sum')
  })

  it('weights a match in the name above one in the description', () => {
    const i = createSearchIndex([
      tool('s', 'archive', {
        description: 'Moves an item away; never deletes anything, unlike delete.',
      }),
      tool('s', 'delete_item', { description: 'Removes an item.' }),
    ])
    expect(i.search('delete').map((h) => h.name)).toEqual(['delete_item', 'archive'])
  })

  it('returns nothing for a query that matches nothing', () => {
    expect(index.search('zzzqqq')).toEqual([])
    expect(index.search('')).toEqual([])
  })

  it('returns 5 hits by default and clamps the limit to 1..MAX_SEARCH_LIMIT', () => {
    expect(index.search('file')).toHaveLength(5)
    expect(index.search('file', 0)).toHaveLength(1)
    const many = createSearchIndex(
      Array.from({ length: MAX_SEARCH_LIMIT + 1 }, (_, i) => tool('s', `thing_${i}`)),
    )
    expect(many.search('thing', MAX_SEARCH_LIMIT)).toHaveLength(MAX_SEARCH_LIMIT)
    expect(many.search('thing', MAX_SEARCH_LIMIT + 1)).toHaveLength(MAX_SEARCH_LIMIT)
  })

  it('returns the declaration of each hit', () => {
    const [hit] = index.search('read_graph', 1)
    expect(hit).toMatchObject({ server: 'memory', name: 'read_graph', ident: 'read_graph' })
    expect(hit!.score).toBeGreaterThan(0)
    expect(hit!.declaration).toContain(
      'tools.memory.read_graph(args?: Memory_ReadGraphInput): Promise<Memory_ReadGraphOutput>\n',
    )
    expect(hit!.declaration).toContain('type Memory_ReadGraphOutput = {')
    expect(hit!.declaration).toMatch(/^\/\*\*\n \* Read Graph\n \* Read the entire knowledge graph/)
  })
})

describe('fitSearchHits', () => {
  const hits = createSearchIndex(demoTools(['memory'])).search('entities relations', 4)
  const full = hits.map((h) => bytes(h.declaration))
  const compact = hits.map((h) => bytes(h.compact))

  it('declares every hit in full when the budget holds them all', () => {
    const sum = full.reduce((a, b) => a + b, 0)
    const { shown, more } = fitSearchHits(hits, sum)
    expect(shown.map((h) => h.form)).toEqual(['full', 'full', 'full', 'full'])
    expect(more).toEqual([])
  })

  it('gives the next hit its compact form one byte short, and names the rest in order', () => {
    const budget = full[0]! + compact[1]!
    const { shown, more } = fitSearchHits(hits, budget)
    expect(shown.map((h) => [h.ident, h.form])).toEqual([
      [hits[0]!.ident, 'full'],
      [hits[1]!.ident, 'compact'],
    ])
    expect(shown[1]!.declaration).toBe(hits[1]!.compact)
    expect(more).toEqual(hits.slice(2).map((h) => `tools.memory.${h.ident}`))
    const short = fitSearchHits(hits, budget - 1)
    expect(short.shown.map((h) => h.form)).toEqual(['full'])
    expect(short.more).toHaveLength(3)
  })

  it('always declares the first hit, compact, even past the budget', () => {
    const { shown, more } = fitSearchHits(hits, 0)
    expect(shown).toEqual([{ ...hits[0]!, declaration: hits[0]!.compact, form: 'compact' }])
    expect(more).toHaveLength(3)
  })

  it('renders a compact declaration as its first sentence and a one-line signature', () => {
    const graph = createSearchIndex(demoTools(['memory'])).search('create_relations', 1)[0]!
    expect(graph.compact).toBe(
      '/** Create multiple new relations between entities in the knowledge graph. */\n' +
        'tools.memory.create_relations(args: { relations: { from: string; to: string; relationType: string }[] }): ' +
        'Promise<{ relations: { from: string; to: string; relationType: string }[] }>\n',
    )
  })
})
