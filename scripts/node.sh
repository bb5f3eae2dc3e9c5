#!/usr/bin/env bash
# Prints the absolute path of a Node binary of VERSION, taken from npm's `node` package (no
# system install) and kept in .ci/.node/VERSION (ignored by git); installs it the first time.
#   bash scripts/node.sh 22.23.3
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:?usage: scripts/node.sh VERSION (e.g. 22.23.3)}"
prefix=".ci/.node/$version"
bin="$prefix/node_modules/node/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "node@$version" >/dev/null
fi
echo "$PWD/$bin"
