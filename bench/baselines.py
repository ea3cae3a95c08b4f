"""Physical limits of this machine, measured in the same run as the peers.

They bound what any archive can reach here: an archive that syncs every
instance cannot ingest faster than the synced copy of the same files.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path


def synced_write_mb_per_s(scratch, megabytes=256):
    """Write `megabytes` MiB sequentially with dd and one fdatasync at the
    end; return MB/s (10^6 bytes per second)."""
    target = Path(scratch) / "dd.bin"
    started = time.monotonic()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={megabytes}",
         "conv=fdatasync"],
        check=True, capture_output=True,
    )
    seconds = time.monotonic() - started
    target.unlink()
    return megabytes * 1024 * 1024 / 1e6 / seconds


def fsync_copy_mb_per_s(files, scratch):
    """Copy every file to `scratch` with one fsync per file, the least a
    durable archive does per instance; return MB/s."""
    target = Path(scratch) / "fsync-copy"
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    started = time.monotonic()
    for index, path in enumerate(files):
        data = path.read_bytes()
        with open(target / f"{index:07}.dcm", "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        total += len(data)
    seconds = time.monotonic() - started
    shutil.rmtree(target)
    return total / 1e6 / seconds


def sha256_mb_per_s(files):
    """Hash every file with sha256sum after reading it once into the page
    cache; return MB/s for the hashing alone."""
    total = sum(path.stat().st_size for path in files)
    for path in files:
        path.read_bytes()
    started = time.monotonic()
    batch = 200
    for first in range(0, len(files), batch):
        names = [str(path) for path in files[first:first + batch]]
        subprocess.run(["sha256sum", *names], check=True, capture_output=True)
    return total / 1e6 / (time.monotonic() - started)
