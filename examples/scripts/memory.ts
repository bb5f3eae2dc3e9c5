// A program as a model would send it to execute_code (the body of an async function).
// Run it once: node dist/src/main.js run --config examples/demo/sluice.yaml examples/scripts/memory.ts
interface Finding {
  topic: string
  note: string
}

const findings: Finding[] = [
  { topic: 'sluice', note: 'runs model code in a fresh QuickJS WebAssembly instance' },
  { topic: 'policy', note: 'every inner tool call is authorised with its arguments' },
]

// One write (server-memory rewrites its file on every write), then reads in parallel.
await tools.memory.create_entities({
  entities: findings.map((f) => ({ name: f.topic, entityType: 'finding', observations: [f.note] })),
})
const [graph, files] = await Promise.all([
  tools.memory.read_graph({}),
  tools.filesystem.list_directory({ path: '.' }),
])
console.log(`the graph holds ${graph.entities.length} entities`)
return {
  topics: graph.entities.map((e) => e.name).sort(),
  files: files.content,
}
