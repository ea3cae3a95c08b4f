"""Machine facts, versions, and the Markdown results page."""

import datetime
import os
import platform
import sys

from results import run_text

PEER_ORDER = ["Orthanc", "Tessera 1n R=1", "Tessera 3n R=3"]
BASELINE_PEER = "Orthanc"


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


def peer_table(results, measures):
    header = "| measure | " + " | ".join(
        f"{peer} | ×Orthanc" if peer != BASELINE_PEER else peer for peer in PEER_ORDER
    ) + " |"
    columns = 1 + len(PEER_ORDER) + (len(PEER_ORDER) - 1)
    lines = [header, "|" + " --- |" * columns]
    for measure in measures:
        row = [measure.title]
        for peer in PEER_ORDER:
            row.append(cell(results, measure, peer))
            if peer != BASELINE_PEER:
                row.append(ratio_text(results, measure, peer))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def baseline_table(results, measures):
    lines = ["| measure | median |", "| --- | --- |"]
    for measure in measures:
        lines.append(f"| {measure.title} | {cell(results, measure, 'machine')} |")
    return lines


def render(results):
    lines = ["# Benchmark results", ""]
    lines += [f"Command: `{results.command}` ({results.rounds} rounds, "
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
        if group == "Physical baselines":
            lines += baseline_table(results, measures)
        else:
            lines += peer_table(results, measures)
        lines.append("")
    if results.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    return "\n".join(lines)
