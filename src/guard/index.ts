/**
 * Guard: finds personal data and secrets in text (detect), and proves the finders work
 * (selfTest). Tokenisation and spotlighting build on `detect`.
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
