#!/usr/bin/env bash
# Builds the `tessera:local` image without a registry: a root filesystem of the
# release binary and the shared libraries it links, loaded with `docker import`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}
"$root/tests/setup.sh"
cargo build --release --bin tessera --manifest-path "$root/Cargo.toml"

binary="$CARGO_TARGET_DIR/release/tessera"
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/usr/local/bin" "$rootfs/var/lib/tessera" "$rootfs/tmp"
cp "$binary" "$rootfs/usr/local/bin/tessera"
# The dynamic loader and every library the binary needs, at their own paths.
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done

tar -C "$rootfs" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/tessera"]' \
    --change 'CMD ["serve", "--data-dir", "/var/lib/tessera", "--grpc-listen", "0.0.0.0:7401", "--http-listen", "0.0.0.0:7481"]' \
    - tessera:local
echo "built image tessera:local"
