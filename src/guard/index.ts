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
