"""Start and stop the archives under test: Tessera clusters and Orthanc.

Every peer runs as a child process on 127.0.0.1 with its data in a fresh
folder, so that each measure starts from an empty archive.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ORTHANC_BIN = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

# DCMTK reads this variable in every process that opens an association. The
# Debian build leaves Nagle's algorithm on otherwise, which stalls each DIMSE
# message behind a delayed ACK (about 40 ms on Linux).
DCMTK_ENV = {"TCP_NODELAY": "1"}


class PeerError(RuntimeError):
    """A peer did not start, or stopped before the measure ended."""


@dataclass
class Endpoints:
    """Addresses of one archive's services; None marks a protocol that it lacks."""

    name: str
    dimse: tuple | None = None  # (host, port, called AE title)
    dicomweb: str | None = None  # base URL of the DICOMweb root
    grpc: list = field(default_factory=list)  # host:port of every node
    data_dirs: list = field(default_factory=list)


def wait_until(check, timeout, what):
    """Poll `check` until it returns true; raise PeerError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise PeerError(f"{what} not ready after {timeout} s")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def tcp_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_free_ports(name, ports):
    """Raise PeerError if another process already listens on one of `ports`."""
    taken = [port for port in ports if tcp_open("127.0.0.1", port)]
    if taken:
        raise PeerError(
            f"{name}: ports {taken} on 127.0.0.1 are in use by another process; "
            "stop it or choose other ports (--tessera-ports)"
        )


def stop_process(process, timeout=20):
    """Send SIGTERM, then SIGKILL if the process outlives `timeout` s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Orthanc:
    """Orthanc with the DICOMweb plugin, configured for speed on loopback."""

    def __init__(self, workdir, dicom_port, http_port, move_port):
        self.workdir = Path(workdir)
        self.dicom_port = dicom_port
        self.http_port = http_port
        self.move_port = move_port
        self.process = None
        self.name = "Orthanc"

    def config(self):
        return {
            "Name": "bench",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "StorageCompression": False,
            "SyncStorageArea": True,
            "StoreMD5ForAttachments": True,
            "Plugins": [DICOMWEB_PLUGIN],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "KeepAlive": True,
            "TcpNoDelay": True,
            "HttpThreadsCount": 50,
            "DicomServerEnabled": True,
            "DicomAet": "ORTHANC",
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomThreadsCount": 4,
            "MaximumPduLength": 131072,
            "DefaultEncoding": "Utf8",
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomModalities": {"bench": ["BENCHSCP", "127.0.0.1", self.move_port]},
            # Every attribute the queries match or return is a main DICOM
            # tag, which Orthanc's index stores, so reading files adds only cost.
            "StorageAccessOnFind": "Never",
            "SaveJobs": False,
            "OverwriteInstances": False,
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": False,
                "Host": f"127.0.0.1:{self.http_port}",
                "Ssl": False,
            },
        }

    def start(self):
        require_free_ports(self.name, [self.dicom_port, self.http_port])
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        log = open(self.workdir / "orthanc.log", "wb")
        env = dict(os.environ, **DCMTK_ENV)
        self.process = subprocess.Popen(
            [ORTHANC_BIN, str(config_path)], stdout=log, stderr=log, env=env
        )
        url = f"http://127.0.0.1:{self.http_port}/system"
        wait_until(lambda: self.alive() and http_ok(url), 60, "Orthanc HTTP")
        wait_until(lambda: tcp_open("127.0.0.1", self.dicom_port), 30, "Orthanc DICOM")
        return self.endpoints()

    def alive(self):
        if self.process.poll() is not None:
            raise PeerError(f"Orthanc exited; see {self.workdir}/orthanc.log")
        return True

    def http_base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def instance_count(self):
        with urllib.request.urlopen(f"{self.http_base()}/statistics", timeout=10) as response:
            return json.load(response)["CountInstances"]

    def endpoints(self):
        return Endpoints(
            name=self.name,
            dimse=("127.0.0.1", self.dicom_port, "ORTHANC"),
            dicomweb=f"http://127.0.0.1:{self.http_port}/dicom-web",
            data_dirs=[self.workdir / "storage", self.workdir / "index"],
        )

    def stop(self):
        if self.process:
            stop_process(self.process)
            self.process = None


class TesseraCluster:
    """`tessera cluster local` with N nodes and R replicas on 127.0.0.1.

    Node i serves gRPC on base+i, DIMSE on base+40+i (AE TESSERA<i>) and
    HTTP, with DICOMweb under /dicom-web, on base+80+i.
    """

    def __init__(self, binary, workdir, nodes, replication, base_port):
        self.binary = binary
        self.workdir = Path(workdir)
        self.nodes = nodes
        self.replication = replication
        self.base_port = base_port
        self.process = None
        self.name = f"Tessera {nodes}n R={replication}"

    def ports(self):
        offsets = (0, 40, 80)
        return [self.base_port + offset + node for offset in offsets for node in range(1, self.nodes + 1)]

    def start(self):
        require_free_ports(self.name, self.ports())
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        log = open(self.workdir / "cluster.log", "wb")
        command = [
            str(self.binary), "cluster", "local",
            "--nodes", str(self.nodes),
            "--dir", str(self.workdir),
            "--base-port", str(self.base_port),
            "--replication-factor", str(self.replication),
            "--dimse-peer", "BENCHSCP@127.0.0.1:9299",
        ]
        self.process = subprocess.Popen(command, stdout=log, stderr=log)
        wait_until(self.ready, 120, f"{self.name} cluster")
        self.check_nodes_alive()
        return self.endpoints()

    def check_nodes_alive(self):
        """Raise PeerError unless every node process still runs: a node that
        could not bind its ports exits, while clients would reach whatever
        else listens there."""
        for node_id, pid in self.node_pids().items():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                log = self.workdir / f"node-{node_id}" / "node.log"
                raise PeerError(f"{self.name}: node {node_id} exited after start; see {log}")

    def ready(self):
        if self.process.poll() is not None:
            raise PeerError(f"{self.name} exited; see {self.workdir}/cluster.log")
        return "cluster ready" in (self.workdir / "cluster.log").read_text(errors="replace")

    def cluster_file(self):
        return json.loads((self.workdir / "cluster.json").read_text())

    def endpoints(self):
        nodes = self.cluster_file()["nodes"]
        first = nodes[0]["node_id"]
        dimse_port = self.base_port + 40 + first
        http_port = self.base_port + 80 + first
        dimse_up = tcp_open("127.0.0.1", dimse_port)
        web_url = f"http://127.0.0.1:{http_port}/dicom-web"
        web_up = dicomweb_answers(web_url)
        return Endpoints(
            name=self.name,
            dimse=("127.0.0.1", dimse_port, f"TESSERA{first}") if dimse_up else None,
            dicomweb=web_url if web_up else None,
            grpc=[node["grpc_addr"] for node in nodes],
            data_dirs=[Path(node["data_dir"]) for node in nodes],
        )

    def status(self):
        """Return `tessera cluster status --json` as a dict."""
        addrs = ",".join(node["grpc_addr"] for node in self.cluster_file()["nodes"])
        command = [str(self.binary), "cluster", "status", "--json", "--addr", addrs]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise PeerError(f"cluster status failed: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def instance_count(self):
        return self.status()["instances"]

    def node_pids(self):
        return {node["node_id"]: node["pid"] for node in self.cluster_file()["nodes"]}

    def stop(self):
        if self.process:
            stop_process(self.process, timeout=30)
            self.process = None


def dicomweb_answers(base_url):
    """Tell whether a QIDO-RS study search returns 200 or 204 at `base_url`."""
    try:
        with urllib.request.urlopen(f"{base_url}/studies?limit=1", timeout=2) as response:
            return response.status in (200, 204)
    except OSError:
        return False
