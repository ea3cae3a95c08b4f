"""Clients that drive one archive through one protocol and time it.

Each ingest driver returns the wall-clock seconds from the first byte sent to
the last acknowledgement. Each query driver returns one latency in seconds.
The same driver and the same files serve every peer.
"""

import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
)

from peers import DCMTK_ENV

STORESCU = "/usr/bin/storescu"
STOW_BATCH_BYTES = 32 * 1024 * 1024


class DriverError(RuntimeError):
    """A client reported a failure, so the timing is not valid."""


# ---------------------------------------------------------------- ingest


def split_series_dirs(corpus, parts):
    """Split the series folders of `corpus` into `parts` groups of about
    equal bytes, so that parallel clients finish near the same time."""
    series = sorted({path.parent for path in Path(corpus).rglob("*.dcm")})
    sized = sorted(
        ((sum(f.stat().st_size for f in d.glob("*.dcm")), d) for d in series),
        reverse=True,
    )
    groups = [[0, []] for _ in range(parts)]
    for size, folder in sized:
        lightest = min(groups, key=lambda group: group[0])
        lightest[0] += size
        lightest[1].append(folder)
    return [folders for _, folders in groups if folders]


def storescu_command(endpoints, folders):
    host, port, called = endpoints.dimse
    return [
        STORESCU, "-aet", "BENCH", "-aec", called, "-R", "-nh",
        "-pdu", "131072", "+sd", "+r", host, str(port),
        *[str(folder) for folder in folders],
    ]


def cstore(endpoints, corpus, associations):
    """Send the corpus with DCMTK storescu over `associations` parallel
    associations; return the seconds taken."""
    if endpoints.dimse is None:
        raise DriverError(f"{endpoints.name} has no DIMSE listener")
    groups = split_series_dirs(corpus, associations)
    env = dict(os.environ, **DCMTK_ENV)
    started = time.monotonic()
    clients = [
        subprocess.Popen(
            storescu_command(endpoints, folders), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for folders in groups
    ]
    outputs = [client.communicate() for client in clients]
    seconds = time.monotonic() - started
    for client, (_, stderr) in zip(clients, outputs):
        if client.returncode != 0 or b"E: " in stderr:
            raise DriverError(f"storescu failed: {stderr.decode(errors='replace')[-600:]}")
    return seconds


def multipart_body(files, boundary):
    """Build a multipart/related body with one application/dicom part per file."""
    pieces = []
    for path in files:
        pieces.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        pieces.append(Path(path).read_bytes())
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return b"".join(pieces)


def batches_by_bytes(files, limit):
    batch, size = [], 0
    for path in files:
        length = path.stat().st_size
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


def stow_batch(session, url, files, timeout=None):
    boundary = uuid.uuid4().hex
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }
    body = multipart_body(files, boundary)
    response = session.post(url, data=body, headers=headers, timeout=timeout)
    if response.status_code != 200:
        raise DriverError(f"STOW-RS returned {response.status_code}: {response.text[:300]}")


def stow(endpoints, files, clients=4):
    """POST the files to STOW-RS in batches of up to 32 MiB from `clients`
    threads; return the seconds taken. Building each body is counted."""
    if endpoints.dicomweb is None:
        raise DriverError(f"{endpoints.name} has no DICOMweb service")
    url = f"{endpoints.dicomweb}/studies"
    batches = list(batches_by_bytes(files, STOW_BATCH_BYTES))
    local = threading.local()

    def send(batch):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        stow_batch(local.session, url, batch)

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, batches))
    return time.monotonic() - started


def tessera_store(binary, endpoints, corpus, parallel=4):
    """Store the corpus with `tessera store` over gRPC; return the seconds."""
    command = [
        str(binary), "store", str(corpus), "--addr", ",".join(endpoints.grpc),
        "--parallel", str(parallel), "--json",
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise DriverError(f"tessera store failed: {result.stdout[-400:]} {result.stderr[-400:]}")
    return seconds


def orthanc_rest_store(http_base, files, clients=4):
    """POST each file to Orthanc's /instances from `clients` threads, which
    is Orthanc's own API for ingest; return the seconds taken."""
    local = threading.local()

    def send(path):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.post(f"{http_base}/instances", data=path.read_bytes())
        if response.status_code != 200:
            raise DriverError(f"Orthanc /instances returned {response.status_code} for {path}")

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, files))
    return time.monotonic() - started


# ----------------------------------------------------------------- query


class FindClient:
    """One DIMSE association kept open for many C-FIND requests at study
    level, with Nagle's algorithm off as for the DCMTK peers."""

    def __init__(self, endpoints):
        if endpoints.dimse is None:
            raise DriverError(f"{endpoints.name} has no DIMSE listener")
        host, port, called = endpoints.dimse
        ae = AE(ae_title="BENCH")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        self.association = ae.associate(host, port, ae_title=called)
        if not self.association.is_established:
            raise DriverError(f"association with {called} at {host}:{port} was rejected")
        raw = self.association.dul.socket.socket
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def find(self, keys):
        """Run one study-level C-FIND; return (seconds, number of matches)."""
        identifier = study_identifier(keys)
        started = time.monotonic()
        responses = self.association.send_c_find(
            identifier, StudyRootQueryRetrieveInformationModelFind
        )
        matches = 0
        for status, _ in responses:
            if status is None or status.Status not in (0x0000, 0xFF00, 0xFF01):
                raise DriverError(f"C-FIND failed with status {status}")
            if status.Status in (0xFF00, 0xFF01):
                matches += 1
        return time.monotonic() - started, matches

    def close(self):
        self.association.release()


def study_identifier(keys):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.SpecificCharacterSet = "ISO_IR 192"
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate",
                    "ModalitiesInStudy", "AccessionNumber"):
        setattr(identifier, keyword, keys.get(keyword, ""))
    return identifier


def qido_query(params):
    """Encode QIDO-RS parameters, leaving `*` and `^` as they are: RFC 3986
    allows both in a query, and Orthanc 1.10 matches a wildcard only when
    the `*` is not percent-encoded."""
    return "&".join(
        f"{name}={urllib.parse.quote(value, safe='*^,-')}" for name, value in params.items()
    )


def qido(session, endpoints, keys):
    """Run one QIDO-RS study search; return (seconds, number of matches)."""
    if endpoints.dicomweb is None:
        raise DriverError(f"{endpoints.name} has no DICOMweb service")
    query = qido_query(dict(keys, includefield="PatientID,PatientName,StudyDate"))
    started = time.monotonic()
    response = session.get(
        f"{endpoints.dicomweb}/studies?{query}",
        headers={"Accept": "application/dicom+json"},
    )
    seconds = time.monotonic() - started
    if response.status_code == 204:
        return seconds, 0
    if response.status_code != 200:
        raise DriverError(f"QIDO-RS returned {response.status_code}: {response.text[:300]}")
    return seconds, len(response.json())


def tessera_find(binary, endpoints, keys):
    """Run one study-level `tessera find` over gRPC; return (seconds, number
    of matches). The seconds include starting the process."""
    if not endpoints.grpc:
        raise DriverError(f"{endpoints.name} has no gRPC service")
    command = [str(binary), "find", "--level", "study", "--json", "--limit", "100000",
               "--addr", endpoints.grpc[0]]
    for keyword, value in keys.items():
        command += ["-k", f"{keyword}={value}"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise DriverError(f"tessera find failed: {result.stderr.strip()[-300:]}")
    return seconds, int(json.loads(result.stdout)["total"])


def process_start_seconds(binary):
    """Time `tessera --version`: the share of a `tessera find` latency that
    is process start rather than query."""
    started = time.monotonic()
    subprocess.run([str(binary), "--version"], check=True, capture_output=True)
    return time.monotonic() - started


# -------------------------------------------------------------- retrieve


def wado_study(endpoints, study_uid):
    """Fetch a whole study with WADO-RS; return (seconds, bytes received)."""
    if endpoints.dicomweb is None:
        raise DriverError(f"{endpoints.name} has no DICOMweb service")
    headers = {"Accept": 'multipart/related; type="application/dicom"'}
    received = 0
    started = time.monotonic()
    with requests.get(f"{endpoints.dicomweb}/studies/{study_uid}",
                      headers=headers, stream=True) as response:
        if response.status_code != 200:
            raise DriverError(f"WADO-RS returned {response.status_code}")
        for piece in response.iter_content(chunk_size=1 << 20):
            received += len(piece)
    return time.monotonic() - started, received


def cget_study(endpoints, study_uid, out_dir):
    """Fetch a whole study with DCMTK getscu; return (seconds, bytes written)."""
    if endpoints.dimse is None:
        raise DriverError(f"{endpoints.name} has no DIMSE listener")
    host, port, called = endpoints.dimse
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        "/usr/bin/getscu", "-aet", "BENCH", "-aec", called, "-S", "-pdu", "131072",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
        "-od", str(out_dir), host, str(port),
    ]
    env = dict(os.environ, **DCMTK_ENV)
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise DriverError(f"getscu failed: {result.stderr[-400:]}")
    written = sum(path.stat().st_size for path in out_dir.iterdir())
    return seconds, written


MOVE_DESTINATION = ("BENCHSCP", 9299)


def cmove_study(endpoints, study_uid, out_dir):
    """Move a whole study to DCMTK movescu's own storage SCP, which listens on
    127.0.0.1:9299 as BENCHSCP; return (seconds, bytes written)."""
    if endpoints.dimse is None:
        raise DriverError(f"{endpoints.name} has no DIMSE listener")
    host, port, called = endpoints.dimse
    title, listen_port = MOVE_DESTINATION
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        "/usr/bin/movescu", "-aet", title, "-aec", called, "-aem", title,
        "+P", str(listen_port), "-S", "-pdu", "131072",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
        "-od", str(out_dir), host, str(port),
    ]
    env = dict(os.environ, **DCMTK_ENV)
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise DriverError(f"movescu failed: {result.stderr[-400:]}")
    written = sum(path.stat().st_size for path in out_dir.iterdir())
    return seconds, written
