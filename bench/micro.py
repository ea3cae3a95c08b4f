"""The micro phase: criterion benchmarks of parsing, hashing, chunking and
applying events to the index.

`cargo bench` would build in the release profile, which recompiles RocksDB,
so the benches are built with `cargo test --workspace --benches --no-run`
(dev profile: Tessera's crates unoptimised, dependencies at opt-level 2) and
each bench binary is run directly with `--bench`.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

from results import Measure

GROUP = "Micro-benchmarks (criterion, dev profile)"
MACHINE = "machine"


def build_benches(repo, target_dir):
    """Build every bench target and return the paths of their executables."""
    command = ["cargo", "test", "--workspace", "--benches", "--no-run",
               "--message-format=json-render-diagnostics"]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    print(f"building benches: {' '.join(command)} (CARGO_TARGET_DIR={target_dir})", flush=True)
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the benches failed:\n{result.stderr[-2000:]}")
    executables = []
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") != "compiler-artifact" or not message.get("executable"):
            continue
        if "bench" in message["target"]["kind"]:
            executables.append(Path(message["executable"]))
    return executables


def run_bench(executable, criterion_home, smoke):
    timing = ["--warm-up-time", "0.2", "--measurement-time", "0.5"] if smoke else \
        ["--warm-up-time", "1", "--measurement-time", "3"]
    env = dict(os.environ, CRITERION_HOME=str(criterion_home))
    print(f"  running {executable.name}", flush=True)
    result = subprocess.run([str(executable), "--bench", "--noplot", *timing], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{executable.name} failed:\n{result.stderr[-1500:]}")


def collect(criterion_home):
    """Yield (id, median ns per iteration, throughput) for every benchmark
    that criterion saved under `criterion_home`."""
    for description in sorted(criterion_home.rglob("new/benchmark.json")):
        benchmark = json.loads(description.read_text())
        estimates = json.loads((description.parent / "estimates.json").read_text())
        yield (benchmark["full_id"], estimates["median"]["point_estimate"],
               benchmark.get("throughput"))


def throughput_text(nanoseconds, throughput):
    if not throughput:
        return None
    (kind, amount), = throughput.items()
    per_second = amount / (nanoseconds / 1e9)
    if kind in ("Bytes", "BytesDecimal"):
        return f"{per_second / 1e6:.0f} MB/s"
    return f"{per_second:,.0f} per s"


def run_micro(args, repo, target_dir, results):
    criterion_home = args.workdir / "criterion"
    shutil.rmtree(criterion_home, ignore_errors=True)
    try:
        for executable in build_benches(repo, target_dir):
            run_bench(executable, criterion_home, args.smoke)
    except RuntimeError as error:
        print(f"  micro: {error}", flush=True)
        results.notes.append(f"Micro-benchmarks incomplete: {' '.join(str(error).split())[:400]}")
    for full_id, nanoseconds, throughput in collect(criterion_home):
        measure = Measure(f"micro.{full_id}", f"`{full_id}`", "µs", False, GROUP)
        results.add(measure, MACHINE, nanoseconds / 1000)
        extra = throughput_text(nanoseconds, throughput)
        if extra:
            results.extra[(measure.key, MACHINE)] = extra
