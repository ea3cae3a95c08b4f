"""The phases of a benchmark run. Each one alternates between the peers,
round after round, and adds samples to a Results."""

import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

import requests

import baselines
import corpus as corpora
import drivers
import memory
import repair
import scale
from peers import Orthanc, PeerError
from results import Measure

MACHINE = "machine"
QUERY_REPEATS = 11
QUERY_KINDS = {
    "patient_id": "PatientID, exact",
    "date_range": "StudyDate, 90-day range",
    "name_wildcard": "PatientName, prefix wildcard",
}
DATE_RANGE = "20240101-20240330"
NAME_PREFIX = "SMI*"


def ingest_corpus(args):
    return corpora.generate(args.binary, args.workdir / f"corpus-mix-{args.total_mb}mb",
                            seed=1, total_mb=args.total_mb)


# ------------------------------------------------------------- baselines


BASELINES = [
    (Measure("baseline.dd", "Synced sequential write (dd, conv=fdatasync, 256 MiB)",
             "MB/s", True, "Physical baselines"),
     lambda args, c: baselines.synced_write_mb_per_s(args.workdir)),
    (Measure("baseline.fsync_copy", "Copy of the ingest corpus, one fsync per file",
             "MB/s", True, "Physical baselines"),
     lambda args, c: baselines.fsync_copy_mb_per_s(c.files, args.workdir)),
    (Measure("baseline.sha256", "sha256sum of the ingest corpus (page cache warm)",
             "MB/s", True, "Physical baselines"),
     lambda args, c: baselines.sha256_mb_per_s(c.files)),
]


def run_baselines(args, peers, results):
    corpus = ingest_corpus(args)
    for round_number in range(args.rounds):
        for measure, run in BASELINES:
            value = run(args, corpus)
            print(f"  round {round_number + 1} {measure.key}: {value:.1f} {measure.unit}")
            results.add(measure, MACHINE, value)


# ---------------------------------------------------------------- ingest


def native_ingest(args, peer, endpoints, files, root, clients=4):
    """Ingest through each peer's own bulk API with `clients` parallel
    clients: `tessera store` over gRPC, or Orthanc's REST /instances."""
    if isinstance(peer, Orthanc):
        return drivers.orthanc_rest_store(peer.http_base(), files, clients)
    return drivers.tessera_store(args.binary, endpoints, root, clients)


INGESTS = [
    (Measure("ingest.cstore1", "C-STORE, 1 association (DCMTK storescu)", "MB/s", True, "Ingest"),
     lambda args, peer, ep, c: drivers.cstore(ep, c.root, 1)),
    (Measure("ingest.cstore4", "C-STORE, 4 associations (DCMTK storescu)", "MB/s", True, "Ingest"),
     lambda args, peer, ep, c: drivers.cstore(ep, c.root, 4)),
    (Measure("ingest.stow", "STOW-RS, 32 MiB requests, 4 clients", "MB/s", True, "Ingest"),
     lambda args, peer, ep, c: drivers.stow(ep, c.files)),
    (Measure("ingest.native1", "Native API, 1 client: Tessera gRPC, Orthanc REST",
             "MB/s", True, "Ingest"),
     lambda args, peer, ep, c: native_ingest(args, peer, ep, c.files, c.root, clients=1)),
    (Measure("ingest.native", "Native API, 4 clients: Tessera gRPC, Orthanc REST",
             "MB/s", True, "Ingest"),
     lambda args, peer, ep, c: native_ingest(args, peer, ep, c.files, c.root)),
]

DISK = Measure("disk.per_byte", "Disk space per stored byte (all replicas, after native ingest)",
               "ratio", False, "Ingest")


def run_ingest(args, peers, results):
    corpus = ingest_corpus(args)
    results.notes.append(
        f"Ingest corpus: {len(corpus.files)} instances, {corpus.megabytes:.0f} MB "
        f"(`tessera generate --mix --seed 1 --total-mb {args.total_mb}`)."
    )
    copy_measure = BASELINES[1][0]
    measure_copy = copy_measure.key not in results.measures
    for round_number in range(args.rounds):
        if measure_copy:
            # The page compares gRPC ingest with the synced copy, so the
            # copy is measured here when the baselines phase did not run.
            results.add(copy_measure, MACHINE, baselines.fsync_copy_mb_per_s(corpus.files,
                                                                             args.workdir))
        for measure, run in INGESTS:
            for peer in peers:
                timed_ingest(args, results, measure, peer, corpus, run, round_number)


def timed_ingest(args, results, measure, peer, corpus, run, round_number):
    """Start `peer` empty, ingest the corpus once, check the count, stop."""
    try:
        endpoints = peer.start()
        seconds = run(args, peer, endpoints, corpus)
        stored = peer.instance_count()
        if stored < len(corpus.files):
            raise drivers.DriverError(f"{stored} of {len(corpus.files)} instances in the archive")
        if stored > len(corpus.files):
            results.notes.append(
                f"{peer.name}, {measure.title}, round {round_number + 1}: the archive reports "
                f"{stored} instances after storing {len(corpus.files)} distinct ones."
            )
        value = corpus.megabytes / seconds
        print(f"  round {round_number + 1} {measure.key} {peer.name}: {value:.1f} MB/s")
        results.add(measure, peer.name, value)
        results.extra[(measure.key, peer.name)] = f"{len(corpus.files) / seconds:.0f} inst/s"
        if measure.key == "ingest.native" and round_number == 0:
            results.add(DISK, peer.name, disk_bytes(endpoints.data_dirs) / corpus.bytes)
    except (drivers.DriverError, PeerError) as error:
        print(f"  {measure.key} {peer.name}: not measured: {error}")
        results.skip(measure, peer.name, str(error))
    finally:
        peer.stop()


def disk_bytes(folders):
    output = subprocess.run(["du", "-sb", *map(str, folders)], capture_output=True, text=True)
    return sum(int(line.split()[0]) for line in output.stdout.splitlines())


# ----------------------------------------------------------------- query


def run_query(args, peers, results):
    """Grow one archive per peer in steps and time the queries at each size."""
    endpoints = {}
    for peer in list(peers):
        try:
            endpoints[peer.name] = peer.start()
        except PeerError as error:
            results.notes.append(f"Query phase without {peer.name}: {error}")
            peers = [other for other in peers if other is not peer]
    try:
        previous = 0
        target_patient = None
        for step, studies in enumerate(args.query_studies):
            corpus = corpora.generate(
                args.binary, args.workdir / f"corpus-query-{step}-{studies - previous}",
                seed=100 + step, max_studies=studies - previous, thumbnails=True,
            )
            target_patient = target_patient or corpora.first_patient(corpus)
            for peer in peers:
                native_ingest(args, peer, endpoints[peer.name], corpus.files, corpus.root)
            previous = studies
            time_queries(args, peers, endpoints, results, studies, target_patient)
    finally:
        for peer in peers:
            peer.stop()


def query_keys(kind, patient_id):
    return {
        "patient_id": {"PatientID": patient_id},
        "date_range": {"StudyDate": DATE_RANGE},
        "name_wildcard": {"PatientName": NAME_PREFIX},
    }[kind]


PROTOCOLS = {
    "cfind": "C-FIND",
    "qido": "QIDO-RS",
    "grpc": "gRPC (`tessera find`, one process per query)",
}
PROCESS_START = Measure("query.process_start", "Start of a `tessera` process (`--version`)",
                        "ms", False, "Query latency (median of 11 requests per round)")


def time_queries(args, peers, endpoints, results, studies, patient_id):
    for round_number in range(args.rounds):
        for peer in peers:
            ep = endpoints[peer.name]
            for kind, title in QUERY_KINDS.items():
                keys = query_keys(kind, patient_id)
                for protocol, protocol_title in PROTOCOLS.items():
                    measure = Measure(
                        f"query.{protocol}.{kind}.{studies}",
                        f"{protocol_title}: {title}, {studies} studies",
                        "ms", False, "Query latency (median of 11 requests per round)",
                    )
                    timed_query(args, results, measure, peer, ep, protocol, keys)
            if isinstance(peer, Orthanc):
                results.skip(PROCESS_START, peer.name, "no client process per query")
            else:
                starts = [drivers.process_start_seconds(args.binary)
                          for _ in range(QUERY_REPEATS)]
                results.add(PROCESS_START, peer.name, statistics.median(starts) * 1000)


def timed_query(args, results, measure, peer, ep, protocol, keys):
    try:
        latencies, matches = repeat_query(args, ep, protocol, keys)
    except (drivers.DriverError, OSError, RuntimeError) as error:
        results.skip(measure, peer.name, str(error))
        return
    results.add(measure, peer.name, statistics.median(latencies) * 1000)
    results.extra[(measure.key, peer.name)] = f"{matches} match{'es' if matches != 1 else ''}"


def repeat_query(args, ep, protocol, keys):
    if protocol == "cfind":
        client = drivers.FindClient(ep)
        try:
            runs = [client.find(keys) for _ in range(QUERY_REPEATS)]
        finally:
            client.close()
    elif protocol == "qido":
        session = requests.Session()
        runs = [drivers.qido(session, ep, keys) for _ in range(QUERY_REPEATS)]
    else:
        runs = [drivers.tessera_find(args.binary, ep, keys) for _ in range(QUERY_REPEATS)]
    return [seconds for seconds, _ in runs], runs[-1][1]


# -------------------------------------------------------------- retrieve


WADO = Measure("retrieve.wado", "WADO-RS of the largest study", "MB/s", True, "Retrieve")
CGET = Measure("retrieve.cget", "C-GET of the largest study (DCMTK getscu)", "MB/s", True,
               "Retrieve")
CMOVE = Measure("retrieve.cmove", "C-MOVE of the largest study to DCMTK movescu", "MB/s", True,
                "Retrieve")


def run_retrieve(args, peers, results):
    corpus = ingest_corpus(args)
    study_uid, files, size = corpora.largest_study(corpus)
    folder = args.workdir / "largest-study"
    link_files(files, folder)
    results.notes.append(
        f"Retrieved study: {len(files)} instances, {size / 1e6:.0f} MB, the largest of the corpus."
    )
    for peer in peers:
        endpoints = peer.start()
        try:
            native_ingest(args, peer, endpoints, files, folder)
            for round_number in range(args.rounds):
                timed_retrieve(args, results, peer, endpoints, study_uid, size, len(files))
        finally:
            peer.stop()


def link_files(files, folder):
    """Hard-link `files` into a fresh `folder`, so a folder-based client
    sends exactly them."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for index, path in enumerate(files):
        os.link(path, folder / f"{index:05}.dcm")


def check_retrieved(measure, out, received, size, instances):
    """Raise DriverError if a retrieval returned less than the whole study.
    DIMSE clients write each instance to its own file, whose Part 10 header
    may differ from the stored one, so files are counted rather than bytes."""
    if measure is WADO:
        if received < size:
            raise drivers.DriverError(f"{received} of {size} bytes received")
        return
    written = len(list(out.iterdir()))
    if written != instances:
        raise drivers.DriverError(f"{written} of {instances} instances received")


def timed_retrieve(args, results, peer, endpoints, study_uid, size, instances):
    out = args.workdir / "retrieved"
    for measure in (WADO, CGET, CMOVE):
        shutil.rmtree(out, ignore_errors=True)
        try:
            if measure is WADO:
                seconds, received = drivers.wado_study(endpoints, study_uid)
            elif measure is CGET:
                seconds, received = drivers.cget_study(endpoints, study_uid, out)
            else:
                seconds, received = drivers.cmove_study(endpoints, study_uid, out)
            check_retrieved(measure, out, received, size, instances)
        except (drivers.DriverError, OSError) as error:
            results.skip(measure, peer.name, str(error))
            continue
        results.add(measure, peer.name, received / 1e6 / seconds)
        results.extra[(measure.key, peer.name)] = f"{received / 1e6:.0f} MB received"


# -------------------------------------------------------------- failover


FAILOVER_TIMEOUT = 0.5  # seconds; a store takes about 10-30 ms when the cluster is healthy
FAILOVER = Measure("failover.gap", "STOW-RS gap after SIGKILL of the leader (3 nodes)", "s",
                   False, "Failover")


def run_failover(args, peers, results):
    clusters = [peer for peer in peers if getattr(peer, "nodes", 1) >= 3]
    small = corpora.generate(args.binary, args.workdir / "corpus-failover", seed=7,
                             max_studies=200, thumbnails=True)
    for peer in peers:
        if peer not in clusters:
            results.skip(FAILOVER, peer.name, "single process, no replica to fail over to")
    for cluster in clusters:
        for round_number in range(args.rounds):
            gap = failover_gap(args, cluster, small.files)
            print(f"  round {round_number + 1} failover gap {cluster.name}: {gap:.2f} s")
            results.add(FAILOVER, cluster.name, gap)


def failover_gap(args, cluster, files):
    """Store files one by one over STOW-RS, SIGKILL the leader after two
    seconds, and return the seconds from the kill to the end of the first
    store that began after it and succeeded."""
    endpoints = cluster.start()
    try:
        urls = [f"http://{node['http_addr']}/dicom-web/studies"
                for node in cluster.cluster_file()["nodes"]]
        log, stop = [], threading.Event()
        writer = threading.Thread(target=stow_one_by_one, args=(urls, files, log, stop))
        writer.start()
        time.sleep(2)
        leader = cluster.status()["leader_id"]
        killed_at = time.monotonic()
        os.kill(cluster.node_pids()[leader], signal.SIGKILL)
        deadline = killed_at + 60
        while time.monotonic() < deadline and not stored_after(log, killed_at):
            time.sleep(0.05)
        stop.set()
        writer.join()
        after = stored_after(log, killed_at)
        if not after:
            raise PeerError("no store succeeded within 60 s of the leader's SIGKILL")
        return min(after) - killed_at
    finally:
        cluster.stop()


def stored_after(log, moment):
    """End times of the successful stores that began after `moment`."""
    return [ended for began, ended, ok in list(log) if ok and began > moment]


def stow_one_by_one(urls, files, log, stop):
    """STOW each file once, trying the nodes in turn from the last one that
    answered, and log (began, ended, succeeded) per attempt. A failed or
    timed-out attempt moves on to the next node after 20 ms, with the next
    file: the same file again could succeed from a survivor's index without
    any write, when the killed leader had committed it before its response
    reached the client, and the gap would then measure nothing."""
    session, current = requests.Session(), 0
    for path in files:
        if stop.is_set():
            return
        began = time.monotonic()
        ok = stow_once(session, urls[current], path)
        log.append((began, time.monotonic(), ok))
        if not ok:
            current = (current + 1) % len(urls)
            time.sleep(0.02)


def stow_once(session, url, path):
    # A request parked on a node that waits for the dead leader would hide
    # the moment the cluster recovers, so give up on it after FAILOVER_TIMEOUT.
    try:
        drivers.stow_batch(session, url, [path], timeout=FAILOVER_TIMEOUT)
        return True
    except (drivers.DriverError, requests.RequestException):
        return False


# ------------------------------------------------- scale, memory, repair


def run_scale(args, peers, results):
    scale.run_scale(args, peers, results, QUERY_KINDS,
                    lambda patient_id: {kind: query_keys(kind, patient_id) for kind in QUERY_KINDS})


def run_memory(args, peers, results):
    memory.run_memory(args, peers, results, disk_bytes)


ALL = {
    "baselines": run_baselines,
    "ingest": run_ingest,
    "query": run_query,
    "scale": run_scale,
    "retrieve": run_retrieve,
    "failover": run_failover,
    "memory": run_memory,
    "repair": repair.run_repair,
}
