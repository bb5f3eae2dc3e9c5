/**
 * The outer tools' wire shapes against what the description budget assumes of them.
 */
import { describe, expect, it } from 'vitest'
import { OUTER_TOOLS_OVERHEAD_BYTES } from '../../src/bindings/index.js'
import {
  EXECUTE_CODE,
  executeCodeInputSchema,
  SEARCH_TOOLS,
  SEARCH_TOOLS_DESCRIPTION,
  searchToolsInputSchema,
} from '../../src/gateway/render.js'

describe('the outer tools', () => {
  it('cost no more than OUTER_TOOLS_OVERHEAD_BYTES besides the execute_code description', () => {
    // What a client lists, as the direct list is counted: name, title, description, inputSchema.
    const listed = JSON.stringify([
      {
        name: EXECUTE_CODE,
        title: 'Run TypeScript against the tools',
        description: '',
        inputSchema: executeCodeInputSchema,
      },
      {
        name: SEARCH_TOOLS,
        title: 'Search the tools',
        description: SEARCH_TOOLS_DESCRIPTION,
        inputSchema: searchToolsInputSchema,
      },
    ])
    expect(Buffer.byteLength(listed)).toBeLessThanOrEqual(OUTER_TOOLS_OVERHEAD_BYTES)
  })
})
