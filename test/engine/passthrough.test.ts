/** The namespaced resource URIs of the prompt and resource pass-through (src/engine/passthrough.ts). */
import { describe, expect, it } from 'vitest'
import { parseResourceUri, resourceUri } from '../../src/engine/index.js'

describe('namespaced resource URIs', () => {
  it('round-trips an upstream URI, including one with its own scheme, slashes and a template', () => {
    for (const uri of ['file:///srv/a.md', 'demo://resource/dynamic/text/{resourceId}', 'x']) {
      expect(parseResourceUri(resourceUri('my-server_1', uri))).toEqual({
        server: 'my-server_1',
        uri,
      })
    }
  })

  it('splits at the first slash after the server: the upstream URI keeps every later one', () => {
    expect(parseResourceUri('sluice://fs/sluice://other/x')).toEqual({
      server: 'fs',
      uri: 'sluice://other/x',
    })
  })

  it('refuses what is not a namespaced URI: another scheme, no server, no upstream URI', () => {
    for (const uri of ['file:///a', 'sluice:/fs/a', 'sluice:///a', 'sluice://fs', 'sluice://fs/'])
      expect(parseResourceUri(uri), uri).toBeUndefined()
  })
})
