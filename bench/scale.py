"""The scale phase: query latency, p50 and p99, on archives filled with many
small instances.

Each step adds thumbnail instances (16x16, real DICOM files from `tessera
generate --mix --thumbnails --max-instances`, a new seed per step) through
each archive's own ingest API with parallel clients, then times the three
study-level queries over C-FIND and QIDO-RS.
"""

import math
import time

import requests

import corpus as corpora
import drivers
from peers import Orthanc, PeerError
from results import Measure

GROUP = "Query latency at scale (p50 and p99)"
FILL_GROUP = "Index fill at scale"
FILL_CLIENTS = 8
PROTOCOLS = {"cfind": "C-FIND", "qido": "QIDO-RS"}
SCALE_PEERS = ("Orthanc", "Tessera 1n R=1")
SEED_BASE = 200
# The size that the scale phase should reach when time allows, on Tessera only.
LARGEST = 1_000_000


def percentile(values, fraction):
    """Nearest-rank percentile: the smallest sample that at least
    `fraction` of the samples do not exceed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def fill_measure(size):
    return Measure(f"scale.fill.{size}", f"Fill up to {size} instances, {FILL_CLIENTS} clients",
                   "inst/s", True, FILL_GROUP)


def memory_measure(size):
    return Measure(f"scale.peak_rss.{size}", f"Peak resident memory after filling to {size} instances",
                   "MiB", False, FILL_GROUP)


def peak_resident_mib(peer):
    """Largest peak resident set (VmHWM) among the peer's server processes."""
    if isinstance(peer, Orthanc):
        pids = [peer.process.pid]
    else:
        pids = list(peer.node_pids().values())
    peaks = []
    for pid in pids:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    if not peaks:
        raise PeerError(f"no VmHWM line for processes {pids}")
    return max(peaks)


def latency_measure(protocol, kind, title, size, stat):
    return Measure(f"scale.{protocol}.{kind}.{size}.{stat}",
                   f"{PROTOCOLS[protocol]}: {title}, {size} instances, {stat}",
                   "ms", False, GROUP)


def run_scale(args, peers, results, query_kinds, query_keys):
    """Grow one archive per peer through `args.scale` and time queries at
    each size. Orthanc stops at sizes above `args.scale_orthanc_max`."""
    chosen = [peer for peer in peers if peer.name in SCALE_PEERS]
    results.notes.append(
        "Scale phase: Tessera 3n R=3 is not part of it, to keep the phase within time."
    )
    if max(args.scale) < LARGEST:
        results.notes.append(
            f"Scale phase: {LARGEST:,} instances were not run (largest size "
            f"{max(args.scale):,}); add {LARGEST} to --scale to run it on Tessera."
        )
    endpoints = start_all(chosen, results)
    try:
        previous, patient_id = 0, None
        for step, size in enumerate(args.scale):
            corpus = corpora.generate(
                args.binary, args.workdir / f"corpus-scale-{step}-{size - previous}",
                seed=SEED_BASE + step, max_instances=size - previous, thumbnails=True,
            )
            patient_id = patient_id or corpora.first_patient(corpus)
            active = [peer for peer in chosen if peer.name in endpoints]
            for peer in active:
                if isinstance(peer, Orthanc) and size > args.scale_orthanc_max:
                    reason = f"above --scale-orthanc-max {args.scale_orthanc_max}"
                    skip_size(results, peer, size, query_kinds, reason)
                    continue
                fill(args, results, peer, endpoints[peer.name], corpus, size)
                time_queries(args, results, peer, endpoints[peer.name], size,
                             query_kinds, query_keys(patient_id))
            previous = size
    finally:
        for peer in chosen:
            peer.stop()


def start_all(peers, results):
    endpoints = {}
    for peer in peers:
        try:
            endpoints[peer.name] = peer.start()
        except PeerError as error:
            results.notes.append(f"Scale phase without {peer.name}: {error}")
    return endpoints


def skip_size(results, peer, size, query_kinds, reason):
    results.skip(fill_measure(size), peer.name, reason)
    for kind, title in query_kinds.items():
        for protocol in PROTOCOLS:
            for stat in ("p50", "p99"):
                results.skip(latency_measure(protocol, kind, title, size, stat), peer.name, reason)


def fill(args, results, peer, endpoints, corpus, size):
    """Store the step's instances with parallel clients and check the count."""
    measure = fill_measure(size)
    try:
        if isinstance(peer, Orthanc):
            seconds = drivers.orthanc_rest_store(peer.http_base(), corpus.files, FILL_CLIENTS)
        else:
            seconds = drivers.tessera_store(args.binary, endpoints, corpus.root, FILL_CLIENTS)
        stored = peer.instance_count()
        if stored < size:
            raise drivers.DriverError(f"{stored} of {size} instances in the archive")
    except (drivers.DriverError, PeerError, requests.RequestException) as error:
        print(f"  fill {size} {peer.name}: not measured: {error}")
        results.skip(measure, peer.name, str(error))
        return
    value = len(corpus.files) / seconds
    print(f"  fill to {size} {peer.name}: {value:.0f} inst/s over {seconds:.0f} s", flush=True)
    results.add(measure, peer.name, value)
    results.extra[(measure.key, peer.name)] = f"{len(corpus.files)} added in {seconds:.0f} s"
    try:
        peak = peak_resident_mib(peer)
    except (OSError, PeerError) as error:
        results.skip(memory_measure(size), peer.name, str(error))
        return
    print(f"  peak resident memory at {size} {peer.name}: {peak:.0f} MiB", flush=True)
    results.add(memory_measure(size), peer.name, peak)


def time_queries(args, results, peer, endpoints, size, query_kinds, keys_by_kind):
    for kind, title in query_kinds.items():
        for protocol in PROTOCOLS:
            p50 = latency_measure(protocol, kind, title, size, "p50")
            p99 = latency_measure(protocol, kind, title, size, "p99")
            try:
                latencies, matches = repeat(args, endpoints, protocol, keys_by_kind[kind])
            except (drivers.DriverError, OSError, RuntimeError) as error:
                results.skip(p50, peer.name, str(error))
                results.skip(p99, peer.name, str(error))
                continue
            results.add(p50, peer.name, percentile(latencies, 0.5) * 1000)
            results.add(p99, peer.name, percentile(latencies, 0.99) * 1000)
            found = f"{matches} match{'es' if matches != 1 else ''}, n={len(latencies)}"
            results.extra[(p50.key, peer.name)] = found
            results.extra[(p99.key, peer.name)] = found
            print(f"  {protocol} {kind} {size} {peer.name}: p50 "
                  f"{percentile(latencies, 0.5) * 1000:.1f} ms, p99 "
                  f"{percentile(latencies, 0.99) * 1000:.1f} ms ({found})", flush=True)


def repeat(args, endpoints, protocol, keys):
    """Run one query up to `args.scale_repeats` times and return the
    latencies in seconds and the match count of the last run. After 3 runs,
    it stops early once `args.scale_seconds` have passed."""
    deadline = time.monotonic() + args.scale_seconds
    latencies, matches = [], 0
    if protocol == "cfind":
        client = drivers.FindClient(endpoints)
        run = client.find
    else:
        session = requests.Session()
        client = None
        run = lambda query: drivers.qido(session, endpoints, query)  # noqa: E731
    try:
        while len(latencies) < args.scale_repeats:
            seconds, matches = run(keys)
            latencies.append(seconds)
            if len(latencies) >= 3 and time.monotonic() > deadline:
                break
    finally:
        if client is not None:
            client.close()
    return latencies, matches
