"""Chart descriptions for the plot program, built from a run's results.

bench/plot (the `tessera-bench-plot` binary) draws each description as a
PNG line chart. This module decides what goes into the charts.
"""

import subprocess

from scale import PROTOCOLS as SCALE_PROTOCOLS

SCALE_PEERS = ("Orthanc", "Tessera 1n R=1")
INGEST_PEERS = ("Orthanc", "Tessera 1n R=1", "Tessera 3n R=3")
INGEST_SERIES = {
    "C-STORE": ("ingest.cstore1", "ingest.cstore4"),
    "native API": ("ingest.native1", "ingest.native"),
}


def scale_sizes(results):
    sizes = set()
    for key in results.measures:
        parts = key.split(".")
        if parts[0] == "scale" and parts[1] in SCALE_PROTOCOLS:
            sizes.add(int(parts[3]))
    return sorted(sizes)


def scale_chart(results, kind, title):
    series = []
    for peer in SCALE_PEERS:
        for protocol, protocol_title in SCALE_PROTOCOLS.items():
            for stat in ("p50", "p99"):
                points = []
                for size in scale_sizes(results):
                    value = results.median(f"scale.{protocol}.{kind}.{size}.{stat}", peer)
                    if value is not None:
                        points.append([size, value])
                if points:
                    series.append({"name": f"{peer}, {protocol_title} {stat}", "points": points})
    return {
        "file": f"scale-{kind.replace('_', '-')}.png",
        "title": f"Study query latency: {title}",
        "x_label": "instances in the archive",
        "y_label": "latency (ms)",
        "log_x": True,
        "log_y": True,
        "series": series,
    }


def ingest_chart(results):
    series = []
    for peer in INGEST_PEERS:
        for name, (one, four) in INGEST_SERIES.items():
            points = [[clients, results.median(key, peer)]
                      for clients, key in ((1, one), (4, four))]
            points = [point for point in points if point[1] is not None]
            if points:
                series.append({"name": f"{peer}, {name}", "points": points})
    return {
        "file": "ingest-parallelism.png",
        "title": "Ingest throughput against parallel associations or clients",
        "x_label": "parallel associations (C-STORE) or clients (native API)",
        "y_label": "MB/s",
        "series": series,
    }


def chart_descriptions(results, query_kinds):
    charts = [scale_chart(results, kind, title) for kind, title in query_kinds.items()]
    charts.append(ingest_chart(results))
    return [chart for chart in charts if chart["series"]]


def draw(plot_binary, results_json, out_dir):
    """Run the plot binary; return an error text, or None when it worked."""
    if not plot_binary.exists():
        return (f"{plot_binary} not found; build it with `cargo test --workspace --no-run` "
                "in the same target folder as the tessera binary")
    result = subprocess.run(
        [str(plot_binary), "--results", str(results_json), "--out-dir", str(out_dir)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        return f"tessera-bench-plot failed: {result.stderr.strip()[-400:]}"
    return None
