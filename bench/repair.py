"""The repair phase: how fast a cluster restores R copies of every blob
after a node is lost for good.

Four nodes with R = 3 store the ingest-style corpus. Once every blob has
three copies, one follower is SIGKILLed and removed from the membership with
`tessera cluster remove-node`. The phase then polls `tessera cluster status`
until it reports no under-replicated blob, and divides the bytes the lost
node held by the time that took.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import tomllib

import corpus as corpora
import drivers
from peers import PeerError, TesseraCluster
from results import Measure

GROUP = "Re-replication after a permanent node loss"
NODES, REPLICAS = 4, 3
POLL_SECONDS = 0.25
TIMEOUT = 900  # seconds; a stalled repair should fail the measure, not hang the run

RATE = Measure("repair.rate", "Re-replication rate after remove-node (4 nodes, R=3)", "MB/s",
               True, GROUP)
AFTER_REMOVE = Measure("repair.seconds", "Time from remove-node to no under-replicated blob",
                       "s", False, GROUP)
AFTER_KILL = Measure("repair.seconds_from_kill",
                     "Time from the SIGKILL to no under-replicated blob", "s", False, GROUP)
PEER = "Tessera 4n R=3"


def run_repair(args, peers, results):
    corpus = corpora.generate(args.binary, args.workdir / f"corpus-mix-{args.repair_mb}mb",
                              seed=1, total_mb=args.repair_mb)
    cluster = TesseraCluster(args.binary, args.workdir / "peers" / "tessera-4", nodes=NODES,
                             replication=REPLICAS, base_port=args.repair_port)
    results.notes.append(
        f"Repair phase: {len(corpus.files)} instances, {corpus.megabytes:.0f} MB stored on "
        f"{NODES} nodes with R={REPLICAS}, then one follower SIGKILLed and removed."
    )
    for round_number in range(args.rounds):
        try:
            one_round(args, results, cluster, corpus, first=round_number == 0)
        except (drivers.DriverError, PeerError, subprocess.SubprocessError) as error:
            print(f"  repair round {round_number + 1}: not measured: {error}", flush=True)
            results.skip(RATE, PEER, str(error))
        finally:
            cluster.stop()
    # Four nodes keep three copies of the corpus, and no later phase uses them.
    shutil.rmtree(cluster.workdir, ignore_errors=True)


def one_round(args, results, cluster, corpus, first):
    endpoints = cluster.start()
    if first:
        results.notes.append(repair_settings(cluster))
    drivers.tessera_store(args.binary, endpoints, corpus.root)
    wait_until_replicated(cluster, addrs(cluster), "after the store")

    status = cluster.status()
    victim = pick_victim(status)
    lost_bytes = next(n["blob_bytes"] for n in status["nodes"] if n["node_id"] == victim)
    lost_blobs = next(n["blob_count"] for n in status["nodes"] if n["node_id"] == victim)
    survivors = [a for node_id, a in node_addrs(cluster).items() if node_id != victim]

    killed_at = time.monotonic()
    os.kill(cluster.node_pids()[victim], signal.SIGKILL)
    remove_node(args.binary, victim, survivors)
    removed_at = time.monotonic()
    done_at = wait_until_replicated(cluster, survivors, f"after removing node {victim}")

    seconds = done_at - removed_at
    rate = lost_bytes / 1e6 / seconds
    print(f"  repair: node {victim} held {lost_blobs} blobs, {lost_bytes / 1e6:.0f} MB; "
          f"{seconds:.1f} s after remove-node, {rate:.1f} MB/s", flush=True)
    results.add(RATE, PEER, rate)
    results.add(AFTER_REMOVE, PEER, seconds)
    results.add(AFTER_KILL, PEER, done_at - killed_at)
    results.extra[(RATE.key, PEER)] = f"{lost_bytes / 1e6:.0f} MB in {lost_blobs} blobs"


def node_addrs(cluster):
    return {node["node_id"]: node["grpc_addr"] for node in cluster.cluster_file()["nodes"]}


def addrs(cluster):
    return list(node_addrs(cluster).values())


def pick_victim(status):
    """Pick the follower with the highest id, so that no election adds to
    the time measured."""
    followers = [n["node_id"] for n in status["nodes"] if n["node_id"] != status["leader_id"]]
    if not followers:
        raise PeerError("cluster status lists no follower")
    return max(followers)


def remove_node(binary, node_id, survivors):
    command = [str(binary), "cluster", "remove-node", str(node_id), "--addr", ",".join(survivors)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise PeerError(f"remove-node {node_id} failed: {result.stderr.strip()[-300:]}")


def status_of(binary, addresses):
    """Return `tessera cluster status --json` from `addresses`, or None when
    no node responds."""
    command = [str(binary), "cluster", "status", "--json", "--addr", ",".join(addresses)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def wait_until_replicated(cluster, addresses, when):
    """Poll until status reports no under-replicated blob; return the
    monotonic time of the first such report."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status = status_of(cluster.binary, addresses)
        if status is not None and status["under_replicated_blobs"] == 0:
            return time.monotonic()
        time.sleep(POLL_SECONDS)
    raise PeerError(f"blobs still under-replicated {TIMEOUT} s {when}")


def repair_settings(cluster):
    """Describe the repair settings the nodes run with, from node 1's config."""
    config_path = cluster.workdir / "node-1" / "tessera.toml"
    config = tomllib.loads(config_path.read_text())
    return (
        f"Repair settings ({config_path.name} of `tessera cluster local`): repair_interval "
        f"{config.get('repair_interval', 'default 5s')}, repair_grace "
        f"{config.get('repair_grace', 'default 60s')}; each pass copies 4 blobs at a time "
        "(REPAIR_PARALLELISM in crates/tessera-node/src/repair.rs). After remove-node the "
        "grace period does not apply, because the node is no longer a member."
    )
