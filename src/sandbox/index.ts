/**
 * The sandbox: runs model-written TypeScript in a fresh QuickJS WebAssembly instance per
 * execution, in worker threads, with host-enforced limits. It knows nothing of tools, policy or
 * MCP: it gets a manifest of names and one `onCall` callback.
 *
 * @module
 */
export { SandboxPool } from './pool.js'
export { transpile } from './transpile.js'
export type { TranspileResult, TranspileError, SourcePosition } from './transpile.js'
export type {
  SandboxCall,
  SandboxCallOutcome,
  SandboxLimits,
  ToolManifest,
  ExecuteRequest,
  ExecuteOptions,
  SandboxError,
  SandboxOutcome,
  SandboxPoolOptions,
  SandboxStats,
  MemoryInspection,
} from './types.js'
