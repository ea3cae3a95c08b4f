#!/usr/bin/env bash
# Installs the system packages and Python modules that building and testing
# Tessera need, on a Debian machine with Rust already present. Idempotent.
set -euo pipefail

need_apt=()
# bindgen (for RocksDB's bindings) loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ldconfig -p | grep -q 'libclang\.so'; then
    need_apt+=(libclang-dev clang)
fi
# DCMTK's command-line tools are the reference DIMSE peers in the interop tests.
for tool in storescu findscu movescu getscu echoscu storescp; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        need_apt+=(dcmtk)
        break
    fi
done
# curl replays a browser viewer's DICOMweb requests.
if ! command -v curl >/dev/null 2>&1; then
    need_apt+=(curl)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# pydicom ships the real-world test corpus (many vendors and modalities);
# pynetdicom and dicomweb-client are the Python DIMSE and DICOMweb peers.
need_pip=()
for module in pydicom:pydicom pynetdicom:pynetdicom dicomweb_client:dicomweb-client; do
    if ! python3 -c "import ${module%%:*}" >/dev/null 2>&1; then
        need_pip+=("${module#*:}")
    fi
done
if [ ${#need_pip[@]} -gt 0 ]; then
    echo "installing ${need_pip[*]} with pip"
    python3 -m pip install --quiet "${need_pip[@]}"
fi
