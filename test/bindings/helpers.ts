/**
 * Shared loaders for the bindings tests: the real demo servers' tool lists and the schema
 * fixtures, as `BindingTool`s.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { assignIdentifiers, type BindingTool } from '../../src/bindings/index.js'
import type { ToolDefinition } from '../../src/types.js'

const fixtures = resolve(import.meta.dirname, '..', 'fixtures')

export const DEMO_SERVERS = ['memory', 'filesystem', 'everything'] as const

export function readDefinitions(path: string): ToolDefinition[] {
  return JSON.parse(readFileSync(path, 'utf8')) as ToolDefinition[]
}

/** The real tool lists of the demo servers, with identifiers assigned. */
export function demoTools(servers: readonly string[] = DEMO_SERVERS): BindingTool[] {
  const entries = servers.flatMap((server) =>
    readDefinitions(join(fixtures, 'tools', `${server}.json`)).map((definition) => ({
      server,
      name: definition.name,
      definition,
    })),
  )
  const { tools, problems } = assignIdentifiers(entries)
  if (problems.length > 0)
    throw new Error(`demo fixtures have problems: ${JSON.stringify(problems)}`)
  return tools
}

/** Schema fixture file names (`types.json`, …). */
export function schemaFixtures(): string[] {
  return readdirSync(join(fixtures, 'schemas'))
    .filter((f) => f.endsWith('.json'))
    .sort()
}

/** One schema fixture's tools under server `fx`. */
export function schemaTools(file: string): BindingTool[] {
  return readDefinitions(join(fixtures, 'schemas', file)).map((definition) => ({
    server: 'fx',
    name: definition.name,
    ident: definition.name,
    definition,
  }))
}

/** A minimal tool for focused tests. */
export function tool(
  server: string,
  name: string,
  definition: Partial<ToolDefinition> = {},
  ident?: string,
): BindingTool {
  return {
    server,
    name,
    ident: ident ?? name,
    definition: { name, inputSchema: { type: 'object', properties: {} }, ...definition },
  }
}
