#!/usr/bin/env bash
# Runs every test: unit tests, property tests, and the cluster tests that start
# real node processes on 127.0.0.1. Installs what it needs first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# A build cache outside the clone, so RocksDB's C++ is compiled once per machine.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}
"$root/tests/setup.sh"

# One feature set for everything: `cargo test` also builds the tessera binary
# (its package has integration tests), and the cluster tests find it beside
# themselves. A different set, as `-p` or `--bins` builds may resolve, would
# compile RocksDB again.
TESSERA_BIN="$CARGO_TARGET_DIR/debug/tessera" cargo test --workspace -- --test-threads=2
