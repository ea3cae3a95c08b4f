#!/usr/bin/env bash
# Installs what the benchmark harness needs beyond tests/setup.sh: Orthanc with
# its DICOMweb plugin, the peer that Tessera is measured against, and the
# DejaVu fonts for the charts. Idempotent.
# Debian starts Orthanc's system service on install (ports 4242 and 8042); the
# harness never uses it and runs its own Orthanc on ports 9242 and 9243.
set -euo pipefail

"$(dirname "$0")/../tests/setup.sh"

need_apt=()
[ -x /usr/sbin/Orthanc ] || need_apt+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb)
# The font that bench/plot draws chart text with.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi
