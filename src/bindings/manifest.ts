/**
 * The manifest the guest prelude turns into `tools`: guest identifiers → upstream spellings.
 *
 * @module
 */
import type { BindingTool } from './model.js'
import { exposableTools } from './declarations.js'

/**
 * `{ [serverIdent]: { [toolIdent]: originalName } }`, the sandbox's `ToolManifest` shape. Keys
 * are the guest-visible identifiers (a server key such as `my-server` appears as `my_server`,
 * as in the declarations); the same tools are left out as by `generateDeclarations`. The maps
 * have null prototypes, so even a hostile key could not reach `Object.prototype`.
 */
export function buildManifest(
  tools: readonly BindingTool[],
): Record<string, Record<string, string>> {
  const manifest: Record<string, Record<string, string>> = Object.create(null)
  for (const { tool, serverIdent } of exposableTools(tools).accepted) {
    manifest[serverIdent] ??= Object.create(null) as Record<string, string>
    manifest[serverIdent][tool.ident] = tool.name
  }
  return manifest
}
