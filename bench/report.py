"""Machine facts, versions, and the Markdown results page."""

import datetime
import os
import platform
import sys

from results import run_text

PEER_ORDER = ["Orthanc", "Tessera 1n R=1", "Tessera 3n R=3"]
BASELINE_PEER = "Orthanc"
MACHINE = "machine"
# Targets for gRPC ingest (`tessera store --parallel 4`) against the copy of
# the same files with one fsync per file. R copies cost R times the bytes,
# so a cluster with R = 3 is held to a third of the copy.
SYNCED_COPY_TARGETS = {"Tessera 1n R=1": (1, 0.8), "Tessera 3n R=3": (3, 0.7)}


def machine_facts(workdir):
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
         if line.startswith("model name")),
        "unknown",
    )
    return {
        "cpus": os.cpu_count(),
        "cpu model": cpu,
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "disk": " ".join(
            run_text(["df", "-h", "--output=source,fstype,size,avail", str(workdir)])
            .splitlines()[-1].split()
        ) + " (device, file system, size, available)",
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def source_state(repo):
    """Describe the commit the binary was built from, and whether the work
    tree had changes that the build may have included."""
    commit = run_text(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    changed = run_text(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    count = len(changed.splitlines())
    return f"commit {commit}" + (f", {count} modified files in the work tree" if count else "")


def versions(binary, repo):
    return {
        "tessera": run_text([str(binary), "--version"])
        + f" (debug build; {source_state(repo)})",
        "Orthanc": run_text(["/usr/sbin/Orthanc", "--version"]).splitlines()[0],
        "Orthanc DICOMweb plugin": run_text(
            ["dpkg-query", "-W", "-f=${Version}", "orthanc-dicomweb"]),
        "DCMTK": run_text(["dpkg-query", "-W", "-f=${Version}", "dcmtk"]),
        "Python": sys.version.split()[0],
        "pynetdicom": module_version("pynetdicom"),
        "pydicom": module_version("pydicom"),
    }


def module_version(name):
    try:
        return __import__(name).__version__
    except ImportError:
        return "missing"


def format_value(value, unit):
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "µs":
        return f"{value:.1f} µs" if value < 1000 else f"{value / 1000:.2f} ms"
    if unit in ("MiB", "inst/s"):
        return f"{value:.0f} {unit}"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def ratio_text(results, measure, peer):
    """Tessera's median against Orthanc's, written so that above 1 means
    Tessera did better."""
    ours = results.median(measure.key, peer)
    theirs = results.median(measure.key, BASELINE_PEER)
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return "–"
    better = ours / theirs if measure.higher_is_better else theirs / ours
    return f"{better:.2f}×"


def cell(results, measure, peer):
    value = results.median(measure.key, peer)
    if value is None:
        reason = results.missing.get((measure.key, peer), "not run")
        return f"not measured ({reason.splitlines()[0][:90]})"
    samples = results.samples[(measure.key, peer)]
    text = format_value(value, measure.unit)
    extra = results.extra.get((measure.key, peer))
    if extra:
        text += f" ({extra})"
    if len(samples) > 1:
        text += f" [n={len(samples)}]"
    return text


def peer_table(results, measures, peers=PEER_ORDER):
    """Build a table with one column per peer, each Tessera peer followed
    by its ratio to Orthanc when Orthanc is among `peers`."""
    with_ratio = BASELINE_PEER in peers
    header = "| measure | " + " | ".join(
        f"{peer} | ×Orthanc" if peer != BASELINE_PEER and with_ratio else peer for peer in peers
    ) + " |"
    columns = 1 + len(peers) + (len(peers) - 1 if with_ratio else 0)
    lines = [header, "|" + " --- |" * columns]
    for measure in measures:
        row = [measure.title]
        for peer in peers:
            row.append(cell(results, measure, peer))
            if peer != BASELINE_PEER and with_ratio:
                row.append(ratio_text(results, measure, peer))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def baseline_table(results, measures, peer=MACHINE):
    column = "median" if peer == MACHINE else peer
    lines = [f"| measure | {column} |", "| --- | --- |"]
    for measure in measures:
        lines.append(f"| {measure.title} | {cell(results, measure, peer)} |")
    return lines


def peers_of(results, measures):
    keys = {measure.key for measure in measures}
    found = {peer for (key, peer) in [*results.samples, *results.missing] if key in keys}
    return found


def group_table(results, measures):
    """Build the group's table: one column per peer of PEER_ORDER that the
    group measured, or a single column when its one peer is outside that
    list (the machine, a 4-node cluster)."""
    peers = peers_of(results, measures)
    if len(peers) == 1 and not peers & set(PEER_ORDER):
        return baseline_table(results, measures, peers.pop())
    return peer_table(results, measures, [peer for peer in PEER_ORDER if peer in peers])


def synced_copy_section(results):
    """Compare gRPC ingest with the synced copy of the same corpus."""
    copy = results.median("baseline.fsync_copy", MACHINE)
    if copy is None or "ingest.native" not in results.measures:
        return []
    lines = ["## Ingest against the synced copy", "",
             f"gRPC ingest (`tessera store --parallel 4`) against the copy of the corpus with "
             f"one fsync per file ({copy:.1f} MB/s in this run).", "",
             "| peer | gRPC ingest | share of the synced copy | target | met |",
             "| --- | --- | --- | --- | --- |"]
    for peer, (replicas, target) in SYNCED_COPY_TARGETS.items():
        value = results.median("ingest.native", peer)
        if value is None:
            lines.append(f"| {peer} | not measured | – | – | – |")
            continue
        share = value / (copy / replicas)
        bound = "the copy" if replicas == 1 else f"a third of the copy ({copy / 3:.1f} MB/s)"
        lines.append(f"| {peer} | {value:.1f} MB/s | {share:.2f} of {bound} | >= {target} | "
                     f"{'yes' if share >= target else 'no'} |")
    return lines + [""]

def render(results):
    lines = ["# Benchmark results", ""]
    rounds = f"{results.rounds} round" + ("s" if results.rounds != 1 else "")
    lines += [f"Command: `{results.command}` ({rounds}, "
              f"{results.wall_seconds / 60:.1f} minutes).", ""]
    lines += ["## Machine", ""] + [f"- {k}: {v}" for k, v in results.machine.items()] + [""]
    lines += ["## Versions", ""] + [f"- {k}: {v}" for k, v in results.versions.items()] + [""]
    lines += ["## Load before each phase (1, 5, 15 minutes)", ""]
    lines += [f"- {phase}: {averages}" for phase, averages in results.load] + [""]
    groups = {}
    for measure in results.measures.values():
        groups.setdefault(measure.group, []).append(measure)
    for group, measures in groups.items():
        lines += [f"## {group}", ""]
        lines += group_table(results, measures)
        lines.append("")
    lines += synced_copy_section(results)
    if results.charts:
        lines += ["## Charts", ""]
        lines += [f"![{title}]({file})" for title, file in results.charts] + [""]
    if results.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    return "\n".join(lines)
