#!/usr/bin/env python3
"""Benchmark Tessera beside Orthanc on this machine and write RESULTS.md.

One command runs every phase against one Tessera node (R = 1), three Tessera
nodes (R = 3) and Orthanc with its DICOMweb plugin, alternating between them,
three rounds each, and records medians and ratios:

    python3 bench/run.py                  # default corpus, about 300 MB
    python3 bench/run.py --total-mb 2000  # a bigger corpus
    python3 bench/run.py --smoke          # tiny corpus, one round, about 1 minute

Everything listens on 127.0.0.1 ports 9000-9499. See bench/README.md.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import micro  # noqa: E402
import phases  # noqa: E402
import plots  # noqa: E402
import report  # noqa: E402
from results import Results  # noqa: E402
from peers import Orthanc, TesseraCluster  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Phases in the order they run. micro runs without any archive peer.
PHASES = [*phases.ALL, "micro"]
DEFAULT_BINARY = Path("/root/.cache/tessera/target/debug/tessera")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, default=DEFAULT_BINARY,
                        help="tessera binary to run (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tessera-bench"),
                        help="folder for corpora and archive data (default: %(default)s)")
    parser.add_argument("--total-mb", type=int, default=300,
                        help="size of the ingest corpus in MB (default: %(default)s)")
    parser.add_argument("--query-studies", default="300,1000,2000",
                        help="archive sizes, in studies, at which queries are timed")
    parser.add_argument("--tessera-ports", default="9000,9300",
                        help="base ports of the 1-node and the 3-node cluster; node i of a "
                             "cluster uses base+i, base+40+i and base+80+i")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every measure; medians are over rounds")
    parser.add_argument("--scale", default="10000,100000",
                        help="archive sizes, in instances, at which the scale phase times "
                             "queries (default: %(default)s)")
    parser.add_argument("--scale-orthanc-max", type=int, default=100000,
                        help="largest scale size that Orthanc is filled to; above it only "
                             "Tessera runs (default: %(default)s)")
    parser.add_argument("--scale-repeats", type=int, default=100,
                        help="requests per query and size in the scale phase (default: %(default)s)")
    parser.add_argument("--scale-seconds", type=float, default=20,
                        help="seconds after which the scale phase stops repeating a query, "
                             "after at least 3 requests (default: %(default)s)")
    parser.add_argument("--memory-frames", type=int, default=4096,
                        help="frames of 512x512 16-bit pixels in the memory phase's instance; "
                             "4096 gives 2 GiB (default: %(default)s)")
    parser.add_argument("--repair-mb", type=int, default=None,
                        help="MB stored before a node is removed in the repair phase "
                             "(default: --total-mb)")
    parser.add_argument("--repair-port", type=int, default=9400,
                        help="base port of the 4-node cluster of the repair phase "
                             "(default: %(default)s)")
    parser.add_argument("--only", default="",
                        help="comma-separated phases to run: " + ", ".join(PHASES))
    parser.add_argument("--smoke", action="store_true",
                        help="tiny corpus and one round, to check the harness in about a minute")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS.md",
                        help="results page to write (default: %(default)s)")
    args = parser.parse_args()
    if args.smoke:
        args.total_mb, args.query_studies, args.rounds = 8, "20,60", 1
        args.scale, args.scale_repeats, args.memory_frames = "200,500", 20, 64
        if args.output == REPO / "bench" / "RESULTS.md":
            args.output = args.workdir / "SMOKE.md"
    args.query_studies = [int(n) for n in args.query_studies.split(",")]
    args.scale = [int(n) for n in args.scale.split(",")]
    args.repair_mb = args.repair_mb or args.total_mb
    unknown = set(filter(None, args.only.split(","))) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}")
    return args


def make_peers(args):
    work = args.workdir / "peers"
    single, triple = (int(port) for port in args.tessera_ports.split(","))
    return [
        TesseraCluster(args.binary, work / "tessera-1", nodes=1, replication=1, base_port=single),
        Orthanc(work / "orthanc", dicom_port=9242, http_port=9243, move_port=9299),
        TesseraCluster(args.binary, work / "tessera-3", nodes=3, replication=3, base_port=triple),
    ]


REQUIRED_TOOLS = [
    "/usr/sbin/Orthanc",
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/bin/storescu",
    "/usr/bin/getscu",
    "/usr/bin/movescu",
]


def check_requirements(binary):
    """Exit with a message that names what is missing and how to get it."""
    if not binary.exists():
        sys.exit(
            f"error: {binary} not found; build it with "
            "`CARGO_TARGET_DIR=/root/.cache/tessera/target cargo test --workspace --no-run`"
        )
    missing = [tool for tool in REQUIRED_TOOLS if not Path(tool).exists()]
    if missing:
        sys.exit(f"error: missing {', '.join(missing)}; install them with bench/setup.sh")


def pin_binary(args):
    """Copy the binary into the work folder and run the copy, so that a
    rebuild in the shared target folder cannot swap it in the middle of a run.
    The target folder it came from stays in `args.target_dir`, where the
    micro phase builds its benches and the plot binary is found."""
    args.target_dir = args.binary.resolve().parent.parent
    pinned = args.workdir / "tessera"
    shutil.copy2(args.binary, pinned)
    args.binary = pinned


def run_phases(args, results):
    peers = make_peers(args)
    wanted = set(filter(None, args.only.split(","))) or set(PHASES)
    for name in PHASES:
        if name not in wanted:
            continue
        results.note_load(name)
        if name == "micro":
            micro.run_micro(args, REPO, args.target_dir, results)
        else:
            phases.ALL[name](args, peers, results)


def draw_plots(args, results, results_json):
    """Describe the charts in results.json and draw them next to the page."""
    charts = plots.chart_descriptions(results, phases.QUERY_KINDS)
    if not charts:
        return
    data = json.loads(results_json.read_text())
    data["plots"] = charts
    results_json.write_text(json.dumps(data, indent=2))
    error = plots.draw(args.target_dir / "debug" / "tessera-bench-plot", results_json,
                       args.output.parent)
    if error:
        results.notes.append(f"Charts not drawn: {error}")
    else:
        results.charts = [(chart["title"], chart["file"]) for chart in charts]


def main():
    args = parse_args()
    check_requirements(args.binary)
    args.workdir.mkdir(parents=True, exist_ok=True)
    pin_binary(args)
    command = " ".join(["python3", "bench/run.py", *sys.argv[1:]])
    results = Results(command=command, rounds=args.rounds)
    results.machine = report.machine_facts(args.workdir)
    results.versions = report.versions(args.binary, REPO)

    started = time.monotonic()
    run_phases(args, results)
    results.wall_seconds = time.monotonic() - started

    results_json = args.workdir / "results.json"
    results_json.write_text(json.dumps(results.to_json(), indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    draw_plots(args, results, results_json)
    args.output.write_text(report.render(results))
    print(f"wrote {args.output} and {args.workdir / 'results.json'}")


if __name__ == "__main__":
    main()
