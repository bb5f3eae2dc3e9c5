/**
 * A deterministic synthetic tool catalogue (10 servers × 20 tools by default) for the token
 * case: realistic names, one-sentence descriptions and input schemas of 1–6 properties with
 * strings, numbers, enums, arrays and a nested object, drawn from a seeded PRNG so every run
 * and every machine counts the same text.
 *
 * @module
 */

/** mulberry32: tiny, seedable, good enough to pick words (and the guard case's JSON). */
export function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SERVERS = [
  'crm',
  'billing',
  'tickets',
  'calendar',
  'mail',
  'docs',
  'warehouse',
  'hr',
  'analytics',
  'deploy',
]
const VERBS = [
  'get',
  'list',
  'search',
  'create',
  'update',
  'delete',
  'archive',
  'export',
  'sync',
  'count',
]
const NOUNS = [
  'contact',
  'account',
  'invoice',
  'ticket',
  'event',
  'message',
  'document',
  'item',
  'order',
  'employee',
  'report',
  'release',
  'comment',
  'label',
  'attachment',
]
const FIELDS = [
  ['id', 'string', 'Unique identifier of the record'],
  ['query', 'string', 'Free-text search query; matches names, titles and notes'],
  ['limit', 'integer', 'Maximum number of results to return (1-100)'],
  ['cursor', 'string', 'Opaque pagination cursor from a previous response'],
  ['since', 'string', 'Only include records changed after this ISO 8601 timestamp'],
  ['amount', 'number', 'Amount in the account currency, two decimals'],
  ['email', 'string', 'Email address of the person'],
  ['tags', 'array', 'Tags to attach; existing tags are kept'],
  ['status', 'enum', 'Lifecycle status of the record'],
  ['owner', 'object', 'The person responsible for the record'],
  ['notify', 'boolean', 'Whether to notify watchers of the change'],
  ['note', 'string', 'Free-form note shown to reviewers'],
]
const PURPOSES = [
  'Useful when the user refers to a record by name rather than id.',
  'Returns at most one page of results; use the cursor to continue.',
  'Changes are audited and visible to the owner.',
  'Fails if the record is locked by another user.',
  'Read-only; never changes data.',
]

/** Fisher–Yates with the seeded PRNG (engine sort order is not part of any spec). */
function shuffle(list, rand) {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[list[i], list[j]] = [list[j], list[i]]
  }
  return list
}

function propertySchema(kind, description, rand) {
  switch (kind) {
    case 'array':
      return { type: 'array', items: { type: 'string' }, description }
    case 'enum': {
      const values = ['draft', 'open', 'pending', 'closed', 'cancelled'].slice(
        0,
        2 + Math.floor(rand() * 4),
      )
      return { type: 'string', enum: values, description }
    }
    case 'object':
      return {
        type: 'object',
        description,
        properties: {
          name: { type: 'string', description: 'Display name' },
          email: { type: 'string', description: 'Email address' },
        },
        required: ['email'],
      }
    default:
      return { type: kind, description }
  }
}

/**
 * `servers × toolsPerServer` tools as `{ server, definition }`, where `definition` is an MCP
 * `Tool` (`name`, `description`, `inputSchema`, `annotations`). Past ten servers the names
 * repeat with a number (`crm2`, `billing2`, …): a fleet of similar servers, as platforms have.
 */
export function syntheticCatalogue({ servers = 10, toolsPerServer = 20, seed = 7 } = {}) {
  if (toolsPerServer > VERBS.length * NOUNS.length)
    throw new RangeError(`toolsPerServer: at most ${VERBS.length * NOUNS.length}`)
  const rand = prng(seed)
  const pick = (list) => list[Math.floor(rand() * list.length)]
  const out = []
  const names = Array.from({ length: servers }, (_, i) => {
    const base = SERVERS[i % SERVERS.length]
    return i < SERVERS.length ? base : `${base}${Math.floor(i / SERVERS.length) + 1}`
  })
  for (const server of names) {
    const used = new Set()
    while (used.size < toolsPerServer) {
      const verb = pick(VERBS)
      const noun = pick(NOUNS)
      const name = `${verb}_${noun}${verb === 'list' || verb === 'search' ? 's' : ''}`
      if (used.has(name)) continue
      used.add(name)
      const fields = shuffle([...FIELDS], rand).slice(0, 1 + Math.floor(rand() * 6))
      const properties = {}
      for (const [field, kind, description] of fields) {
        properties[field] = propertySchema(kind, description, rand)
      }
      const required = fields.filter(() => rand() < 0.4).map(([field]) => field)
      out.push({
        server,
        definition: {
          name,
          description: `${verb[0].toUpperCase()}${verb.slice(1)} ${noun} records in ${server}. ${pick(PURPOSES)}`,
          inputSchema: { type: 'object', properties, ...(required.length > 0 ? { required } : {}) },
          annotations: {
            readOnlyHint: ['get', 'list', 'search', 'count', 'export'].includes(verb),
          },
        },
      })
    }
  }
  return out
}
