"""The memory phase: peak resident memory of an archive process while it
stores one very large multi-frame instance, and the disk space it takes.

The instance is written to disk once, streaming, from a seed: Multi-frame
Grayscale Word Secondary Capture, 512x512 16-bit frames, 4096 of them by
default (2 GiB of Pixel Data). Every client streams the file too, so only
the archive's own memory grows with it. The peak is VmHWM in
/proc/<pid>/status of the node process (or of Orthanc), read after the store
on a freshly started process.
"""

import http.client
import io
import os
import random
import shutil
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

import drivers
from peers import DCMTK_ENV, Orthanc, PeerError
from results import Measure

GROUP = "Memory while storing one large instance"
ROWS = COLUMNS = 512
FRAME_BYTES = ROWS * COLUMNS * 2
SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word SC Image Storage
PIECE = 1 << 20
TARGET_MIB = 512
MEMORY_PEERS = ("Orthanc", "Tessera 1n R=1")
SEND_TIMEOUT = 1800  # seconds; stores of 2 GiB took 11-44 s in trial runs

PROTOCOLS = {
    "native": "native API (Tessera gRPC `tessera store`, Orthanc REST)",
    "stow": "STOW-RS",
    "cstore": "C-STORE (DCMTK storescu)",
}


def large_instance(workdir, frames, seed=11):
    """Write the instance unless a complete one with these parameters exists;
    return its path."""
    path = Path(workdir) / f"large-{frames}x{ROWS}x{COLUMNS}-seed{seed}.dcm"
    done = path.parent / f"{path.name}.complete"
    if not done.exists():
        print(f"generating {path} ({frames * FRAME_BYTES / 2**30:.2f} GiB of pixels)", flush=True)
        write_large_instance(path, frames, seed)
        done.touch()
    return path


def header_bytes(frames, seed):
    """Part 10 preamble, meta group and every attribute before Pixel Data."""
    sop_uid = f"2.25.{int.from_bytes(random.Random(seed).randbytes(15), 'big')}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = SOP_CLASS
    dataset.SOPInstanceUID = sop_uid
    dataset.StudyInstanceUID = sop_uid + ".1"
    dataset.SeriesInstanceUID = sop_uid + ".2"
    dataset.PatientID = f"BIG-{seed}"
    dataset.PatientName = "LARGE^INSTANCE"
    dataset.StudyDate = "20240601"
    dataset.Modality = "OT"
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.NumberOfFrames = frames
    dataset.Rows = ROWS
    dataset.Columns = COLUMNS
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def write_large_instance(path, frames, seed):
    """Stream the file to disk one frame at a time, each frame drawn from
    its own seed so the bytes never depend on memory or on timing."""
    length = frames * FRAME_BYTES
    if length >= 0xFFFFFFFF:
        raise ValueError(f"{frames} frames exceed the 4 GiB limit of a Pixel Data length")
    temporary = path.with_suffix(".partial")
    with open(temporary, "wb") as out:
        out.write(header_bytes(frames, seed))
        out.write(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", length))
        for frame in range(frames):
            out.write(random.Random(seed * 1_000_003 + frame).randbytes(FRAME_BYTES))
    os.replace(temporary, path)


def peak_rss_mib(pid):
    """Return VmHWM of `pid` in MiB: the most resident memory it ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise PeerError(f"process {pid} has no VmHWM line in /proc/{pid}/status")


def stream_post(url, content_type, pieces, length, timeout=SEND_TIMEOUT):
    """POST a body given as an iterator of byte strings with a known length,
    so that neither side needs chunked encoding; return (status, text)."""
    parsed = http.client.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        connection.putrequest("POST", parsed.path)
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(length))
        connection.putheader("Accept", "application/dicom+json")
        connection.endheaders()
        for piece in pieces:
            connection.send(piece)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def file_pieces(path):
    with open(path, "rb") as source:
        while piece := source.read(PIECE):
            yield piece


def stow_stream(endpoints, path):
    if endpoints.dicomweb is None:
        raise drivers.DriverError(f"{endpoints.name} has no DICOMweb service")
    boundary = uuid.uuid4().hex
    opening = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    closing = f"\r\n--{boundary}--\r\n".encode()
    length = len(opening) + path.stat().st_size + len(closing)

    def pieces():
        yield opening
        yield from file_pieces(path)
        yield closing

    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    status, text = stream_post(f"{endpoints.dicomweb}/studies", content_type, pieces(), length)
    if status != 200:
        raise drivers.DriverError(f"STOW-RS returned {status}: {text[:300]}")


def native_store(args, peer, endpoints, path):
    if isinstance(peer, Orthanc):
        status, text = stream_post(f"{peer.http_base()}/instances", "application/dicom",
                                   file_pieces(path), path.stat().st_size)
        if status != 200:
            raise drivers.DriverError(f"Orthanc /instances returned {status}: {text[:300]}")
        return
    command = [str(args.binary), "store", str(path), "--addr", ",".join(endpoints.grpc)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SEND_TIMEOUT)
    if result.returncode != 0:
        raise drivers.DriverError(f"tessera store failed: {result.stderr.strip()[-400:]}")


def cstore_file(endpoints, path):
    if endpoints.dimse is None:
        raise drivers.DriverError(f"{endpoints.name} has no DIMSE listener")
    host, port, called = endpoints.dimse
    command = [drivers.STORESCU, "-aet", "BENCH", "-aec", called, "-nh", "-pdu", "131072",
               "-to", "600", "-ta", "600", "-td", "600", host, str(port), str(path)]
    env = dict(os.environ, **DCMTK_ENV)
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            timeout=SEND_TIMEOUT)
    if result.returncode != 0 or "E: " in result.stderr:
        raise drivers.DriverError(f"storescu failed: {result.stderr[-400:]}")


def archive_pid(peer):
    if isinstance(peer, Orthanc):
        return peer.process.pid
    return peer.node_pids()[1]


PEAK = {protocol: Measure(f"memory.peak.{protocol}",
                          f"Peak RSS (VmHWM) storing the instance over {title}",
                          "MiB", False, GROUP)
        for protocol, title in PROTOCOLS.items()}
IDLE = Measure("memory.idle", "RSS peak (VmHWM) after start, before any store", "MiB", False,
               GROUP)
DISK = Measure("memory.disk_per_byte", "Disk space per stored byte after the native store",
               "ratio", False, GROUP)
SECONDS = {protocol: Measure(f"memory.seconds.{protocol}",
                             f"Time to store the instance over {title}", "s", False, GROUP)
           for protocol, title in PROTOCOLS.items()}


def run_memory(args, peers, results, disk_bytes):
    path = large_instance(args.workdir, args.memory_frames)
    size = path.stat().st_size
    results.notes.append(
        f"Memory phase: one instance of {size / 2**30:.2f} GiB ({args.memory_frames} frames of "
        f"{ROWS}x{COLUMNS} 16-bit), target below {TARGET_MIB} MiB peak RSS for a node."
    )
    chosen = [peer for peer in peers if peer.name in MEMORY_PEERS]
    for round_number in range(args.rounds):
        for protocol in PROTOCOLS:
            for peer in chosen:
                measure_store(args, results, peer, protocol, path, size, disk_bytes,
                              first=round_number == 0)
    # Each archive keeps a copy or two of the instance on disk, and later
    # phases start their peers empty anyway.
    for peer in chosen:
        shutil.rmtree(peer.workdir, ignore_errors=True)


def measure_store(args, results, peer, protocol, path, size, disk_bytes, first):
    """Start `peer` empty, store the instance once over `protocol`, and
    record the process's peak RSS."""
    try:
        endpoints = peer.start()
        pid = archive_pid(peer)
        if first and protocol == "native":
            results.add(IDLE, peer.name, peak_rss_mib(pid))
        started = time.monotonic()
        if protocol == "native":
            native_store(args, peer, endpoints, path)
        elif protocol == "stow":
            stow_stream(endpoints, path)
        else:
            cstore_file(endpoints, path)
        seconds = time.monotonic() - started
        peak = peak_rss_mib(pid)
        stored = peer.instance_count()
        if stored != 1:
            raise drivers.DriverError(f"the archive contains {stored} instances after the store, expected 1")
        print(f"  {protocol} {peer.name}: peak RSS {peak:.0f} MiB, {seconds:.1f} s", flush=True)
        results.add(PEAK[protocol], peer.name, peak)
        results.add(SECONDS[protocol], peer.name, seconds)
        if first and protocol == "native":
            results.add(DISK, peer.name, disk_bytes(endpoints.data_dirs) / size)
    except (drivers.DriverError, PeerError, OSError, subprocess.TimeoutExpired) as error:
        print(f"  memory {protocol} {peer.name}: not measured: {error}", flush=True)
        results.skip(PEAK[protocol], peer.name, str(error))
    finally:
        peer.stop()
