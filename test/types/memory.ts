// Sample model programs for the memory server, as sent to execute_code (wrapped in a function
// because a .ts file has no top-level `return`). Outputs are typed from the pinned outputSchema.

export async function rememberAndRecall() {
  await tools.memory.create_entities({
    entities: [
      { name: 'Ada Lovelace', entityType: 'person', observations: ['wrote the first program'] },
      { name: 'Analytical Engine', entityType: 'machine', observations: [] },
    ],
  })
  await tools.memory.create_relations({
    relations: [{ from: 'Ada Lovelace', to: 'Analytical Engine', relationType: 'programmed' }],
  })
  const added = await tools.memory.add_observations({
    observations: [{ entityName: 'Ada Lovelace', contents: ['born 1815'] }],
  })
  const graph = await tools.memory.read_graph()
  const names: string[] = graph.entities.map((e) => e.name)
  const first: string = graph.entities[0].name
  const kinds = new Set(graph.relations.map((r) => r.relationType))
  const found = await tools.memory.search_nodes({ query: 'Ada' })
  const opened = await tools.memory.open_nodes({ names: ['Ada Lovelace'] })
  const deleted = await tools.memory.delete_entities({ entityNames: ['Analytical Engine'] })
  const ok: boolean = deleted.success
  return {
    names,
    first,
    kinds: [...kinds],
    added: added.results[0].addedObservations.length,
    hits: found.entities.length + opened.relations.length,
    ok,
  }
}

export async function mistakes() {
  // @ts-expect-error misspelt tool: read_graf is not a memory tool (did you mean read_graph?)
  await tools.memory.read_graf()
  // @ts-expect-error misspelt server
  await tools.memroy.read_graph()
  // @ts-expect-error missing required field: every entity needs an entityType
  await tools.memory.create_entities({ entities: [{ name: 'x', observations: [] }] })
  // @ts-expect-error missing required argument object: search_nodes needs { query }
  await tools.memory.search_nodes()
  // @ts-expect-error wrong argument type: names is a string[]
  await tools.memory.open_nodes({ names: 'Ada' })
  // @ts-expect-error extra property: search_nodes takes only { query }
  await tools.memory.search_nodes({ query: 'Ada', limit: 5 })
  const graph = await tools.memory.read_graph()
  // @ts-expect-error misspelt output field: entities, not entitys
  graph.entitys.length
  // @ts-expect-error misspelt nested output field: entityType, not type
  graph.entities[0].type
  // @ts-expect-error an output field has its schema's type: name is a string
  const n: number = graph.entities[0].name
  // @ts-expect-error the tools object is read-only
  // biome-ignore lint/correctness/noSelfAssign: the assignment itself is what the type check rejects
  tools.memory = tools.memory
  return n
}
