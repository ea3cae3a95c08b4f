"""Samples of every measure, per peer, and what could not be measured."""

import statistics
import subprocess
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Measure:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    group: str


@dataclass
class Results:
    command: str
    rounds: int
    machine: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    measures: dict = field(default_factory=dict)  # key -> Measure, in order of first use
    samples: dict = field(default_factory=dict)  # (key, peer) -> [float]
    missing: dict = field(default_factory=dict)  # (key, peer) -> reason
    extra: dict = field(default_factory=dict)  # (key, peer) -> text shown beside the median
    notes: list = field(default_factory=list)
    load: list = field(default_factory=list)  # (phase, load averages)
    charts: list = field(default_factory=list)  # (title, PNG file name beside the page)
    wall_seconds: float = 0.0

    def declare(self, measure):
        self.measures.setdefault(measure.key, measure)

    def add(self, measure, peer, value):
        self.declare(measure)
        self.samples.setdefault((measure.key, peer), []).append(value)

    def skip(self, measure, peer, reason):
        self.declare(measure)
        self.missing.setdefault((measure.key, peer), reason)

    def median(self, key, peer):
        values = self.samples.get((key, peer))
        return statistics.median(values) if values else None

    def note_load(self, phase):
        with open("/proc/loadavg") as loadavg:
            averages = " ".join(loadavg.read().split()[:3])
        self.load.append((phase, averages))
        print(f"== phase {phase} (load averages {averages})", flush=True)

    def to_json(self):
        return {
            "command": self.command,
            "rounds": self.rounds,
            "machine": self.machine,
            "versions": self.versions,
            "measures": {k: vars(m) for k, m in self.measures.items()},
            "samples": [[k, p, v] for (k, p), v in self.samples.items()],
            "missing": [[k, p, r] for (k, p), r in self.missing.items()],
            "extra": [[k, p, t] for (k, p), t in self.extra.items()],
            "notes": self.notes,
            "load": self.load,
            "wall_seconds": self.wall_seconds,
        }


def run_text(command):
    """Run a command and return its stripped stdout, or the error text."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError as error:
        return f"unavailable ({error})"
    return (result.stdout or result.stderr).strip()
