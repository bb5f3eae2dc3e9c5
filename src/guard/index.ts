/**
 * Guardrails on what crosses between tools, the guest and the model: PII and secret detection
 * (and a self-test that proves the finders work), tokenisation with a vault (or redaction), and
 * spotlighting of tool-originated text.
 *
 * @module
 */
export { PII_KINDS, isPiiKind } from './kinds.js'
export type { Detection, PiiKind } from './kinds.js'
export { detect } from './detect.js'
export { selfTest } from './self-test.js'
export { MemoryVault, tokenFor } from './vault.js'
export type { MemoryVaultOptions, Vault, VaultEntry, VaultItem } from './vault.js'
export { PiiGuard, addCounts, countEntries } from './tokenize.js'
export type { PiiCounts, PiiOptions, Protected, Resolved } from './tokenize.js'
export { Spotlight, SPOTLIGHT_NOTE } from './spotlight.js'
