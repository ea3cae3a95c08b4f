#!/usr/bin/env bash
# The main job: a local three-node cluster stores the pydicom corpus and
# generated studies, loses its leader to SIGKILL, and gets it back.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}
"$root/tests/setup.sh"
# The same build as the test command, so the two share one RocksDB build.
cargo test --workspace --no-run
exec "$CARGO_TARGET_DIR/debug/tessera" demo --dir "${TESSERA_DEMO_DIR:-$root/.tessera-demo}" "$@"
