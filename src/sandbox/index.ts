/**
 * The sandbox: runs model-written TypeScript in a fresh QuickJS WebAssembly instance per
 * execution, in worker threads, with host-enforced limits. It knows nothing of tools, policy or
 * MCP: it gets a manifest of names and one `onCall` callback.
 *
 * @module
 */
export { SandboxPool, SANDBOX_DEFAULT_LIMITS } from './pool.js'
export type {
  SandboxCall,
  SandboxCallOutcome,
  RandomSeed,
  SandboxLimits,
  ToolManifest,
  ExecuteRequest,
  ExecuteOptions,
  SandboxError,
  SandboxOutcome,
  SandboxPoolOptions,
  SandboxStats,
  SandboxEvent,
  SandboxWarning,
  MemoryInspection,
} from './types.js'
export type { CodeFacts, ToolCallSite } from './facts.js'
