/**
 * Guardrails on what crosses between tools, the guest and the model: PII and secret detection
 * (and a self-test that proves the finders work), tokenisation with a vault (in-process, or
 * encrypted in the shared store) or redaction, and spotlighting of tool-originated text.
 *
 * @module
 */
export { PII_KINDS, isPiiKind } from './kinds.js'
export type { Detection, PiiKind } from './kinds.js'
export { detect } from './detect.js'
export { selfTest } from './self-test.js'
export { cardValid, ibanValid, luhnValid, shannonEntropy, ssnValid } from './validators.js'
export {
  CONTEXT_MIN_ENTROPY_RATIO,
  CONTEXT_MIN_LENGTH,
  MAX_TOKEN_LENGTH,
  STANDALONE_MIN_ENTROPY_RATIO,
  STANDALONE_MIN_LENGTH,
} from './api-key.js'
export { MemoryVault, tokenFor } from './vault.js'
export type { MemoryVaultOptions, Vault, VaultEntry, VaultItem } from './vault.js'
export { StoreVault, VAULT_SWAP_ATTEMPTS } from './store-vault.js'
export type { StoreVaultOptions, VaultStore } from './store-vault.js'
export { VaultCipher } from './seal.js'
export { PiiGuard, addCounts, countEntries } from './tokenize.js'
export type { PiiCounts, PiiOptions, Protected, Resolved } from './tokenize.js'
export { Spotlight, SPOTLIGHT_NOTE } from './spotlight.js'
