// Sample model programs for the filesystem server (allowed directory: examples/demo/files).

export async function summariseNotes() {
  const allowed = await tools.filesystem.list_allowed_directories()
  const listing = await tools.filesystem.list_directory({ path: 'examples/demo/files' })
  const text = await tools.filesystem.read_text_file({
    path: 'examples/demo/files/README.md',
    head: 20,
  })
  const many = await tools.filesystem.read_multiple_files({
    paths: ['examples/demo/files/README.md'],
  })
  const sized = await tools.filesystem.list_directory_with_sizes({
    path: 'examples/demo/files',
    sortBy: 'size',
  })
  await tools.filesystem.write_file({
    path: 'examples/demo/files/summary.md',
    content: `# Summary\n${text.content.slice(0, 80)}`,
  })
  const edit = await tools.filesystem.edit_file({
    path: 'examples/demo/files/summary.md',
    edits: [{ oldText: '# Summary', newText: '# Notes' }],
    dryRun: true,
  })
  const lines: number = listing.content.split('\n').length
  return {
    allowed: allowed.content,
    lines,
    many: many.content.length,
    sized: sized.content,
    diff: edit.content,
  }
}

export async function images() {
  const media = await tools.filesystem.read_media_file({ path: 'examples/demo/files/logo.png' })
  const first = media.content[0]
  // A discriminated union from the schema's anyOf: narrowing on `type` gives the right fields.
  if (first.type === 'resource') return first.resource.uri
  return first.mimeType
}

export async function mistakes() {
  // @ts-expect-error misspelt tool: read_txt_file (did you mean read_text_file?)
  await tools.filesystem.read_txt_file({ path: 'a' })
  // @ts-expect-error missing required field: write_file needs content
  await tools.filesystem.write_file({ path: 'a.txt' })
  // @ts-expect-error wrong argument type: head is a number
  await tools.filesystem.read_text_file({ path: 'a', head: '10' })
  // @ts-expect-error wrong enum value: sortBy is "name" | "size"
  await tools.filesystem.list_directory_with_sizes({ path: '.', sortBy: 'date' })
  // @ts-expect-error extra property: move_file takes { source, destination }
  await tools.filesystem.move_file({ source: 'a', destination: 'b', overwrite: true })
  const read = await tools.filesystem.read_text_file({ path: 'a' })
  // @ts-expect-error misspelt output field: content, not contents
  return read.contents
}
