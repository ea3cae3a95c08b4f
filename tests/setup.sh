#!/usr/bin/env bash
# Installs the system packages and Python modules that building and testing
# Tessera need, on a Debian machine with Rust already present. Idempotent.
set -euo pipefail

need_apt=()
# bindgen (for RocksDB's bindings) loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ldconfig -p | grep -q 'libclang\.so'; then
    need_apt+=(libclang-dev clang)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# pydicom ships the real-world test corpus (many vendors and modalities).
if ! python3 -c 'import pydicom' >/dev/null 2>&1; then
    echo "installing pydicom with pip"
    python3 -m pip install --quiet pydicom
fi
