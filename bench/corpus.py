"""Corpora made with `tessera generate --mix`, cached by their parameters."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom


@dataclass
class Corpus:
    root: Path
    files: list
    bytes: int

    @property
    def megabytes(self):
        return self.bytes / 1e6


def generate(binary, out, seed, total_mb=None, max_studies=None, thumbnails=False,
             max_instances=None):
    """Generate a mix corpus into `out` unless a finished one is there."""
    out = Path(out)
    # The marker sits beside the corpus because clients send every file in it.
    done = out.parent / f"{out.name}.complete"
    if not done.exists():
        command = [str(binary), "generate", "--mix", "--seed", str(seed), "--out", str(out)]
        command += ["--total-mb", str(total_mb if total_mb is not None else 1_000_000)]
        if max_studies is not None:
            command += ["--max-studies", str(max_studies)]
        if max_instances is not None:
            command += ["--max-instances", str(max_instances)]
        if thumbnails:
            command.append("--thumbnails")
        print(f"generating {out}", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        done.touch()
    files = sorted(out.rglob("*.dcm"))
    return Corpus(out, files, sum(path.stat().st_size for path in files))


def study_folders(corpus):
    """Map each study folder (PATIENT/study-N) to its files."""
    studies = {}
    for path in corpus.files:
        studies.setdefault(path.parent.parent, []).append(path)
    return studies


def largest_study(corpus):
    """Return (Study Instance UID, files, bytes) of the biggest study."""
    folder, files = max(
        study_folders(corpus).items(),
        key=lambda item: sum(path.stat().st_size for path in item[1]),
    )
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    return header.StudyInstanceUID, files, sum(path.stat().st_size for path in files)


def first_patient(corpus):
    """Return the PatientID of the corpus's first file."""
    return pydicom.dcmread(corpus.files[0], stop_before_pixels=True).PatientID
