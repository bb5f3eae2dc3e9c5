#!/usr/bin/env bash
# The unit suite and end-to-end tests on Node 22 and 24 (beside the Node 20 of `npm test`).
# npm's node@22 / node@24 packages give the binaries without a system install (scripts/node.sh
# keeps them in .ci/.node/<version>, ignored by git). Run after `npm test` (it builds dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
UNIT=(test/architecture.test.ts test/errors.test.ts test/text.test.ts test/audit test/auth test/bindings
  test/config test/engine test/gateway test/policy test/registry test/sandbox test/telemetry test/upstream)
E2E=(test/e2e/run-memory.test.ts test/e2e/serve-drain.test.ts)
for version in 22.23.3 24.9.0; do
  bin="$(bash scripts/node.sh "$version")"
  echo "== Node $("$bin" --version): unit suite and ${#E2E[@]} end-to-end tests"
  # The children the tests spawn (sluice, fixture servers) run on the same Node.
  PATH="$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run "${UNIT[@]}" "${E2E[@]}"
done
