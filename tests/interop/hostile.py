"""Peers that misbehave in time or in content, on raw sockets, and what the
listener did about each, printed as JSON.

Usage: hostile.py HOST PORT CALLED_AE CASE [ARGS...]

Cases:
  silent               connect and send nothing (the ARTIM timer must fire)
  idle                 associate, then send nothing (the idle timeout must fire)
  mismatch CMD DATA    C-STORE whose command names SOP Instance UID CMD and
                       whose data set carries DATA
  no_instance_uid UID  C-STORE whose command lacks Affected SOP Instance UID
  context_switch UID   C-STORE command on presentation context 1, its data set
                       on context 3
  unknown_command MB   N-SET-RQ, which the listener does not implement, with a
                       data set of MB megabytes
  stalled_get STUDY    C-GET of a study without reading its sub-operations. Reports
                       whether the listener's end of the connection left
                       ESTABLISHED
"""

import json
import socket
import struct
import sys
import time

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset

from rawpdu import (
    EXPLICIT_LE,
    IMPLICIT_LE,
    SECONDARY_CAPTURE,
    command_bytes,
    encode,
    established,
    item,
    pdata,
    store_command,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
WAIT_SECONDS = 30


def next_event(sock, seconds=WAIT_SECONDS):
    """Return 'abort', 'reject', 'closed', 'timeout' or 'pdu N' for what arrives next."""
    sock.settimeout(seconds)
    try:
        header = sock.recv(6, socket.MSG_WAITALL)
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "closed"
    if len(header) < 6:
        return "closed"
    kind = header[0]
    return {3: "reject", 7: "abort"}.get(kind, f"pdu {kind}")


def store_response(sock):
    """Read PDUs up to the last command fragment and return its status and comment."""
    sock.settimeout(WAIT_SECONDS)
    command = b""
    while True:
        header = sock.recv(6, socket.MSG_WAITALL)
        if len(header) < 6 or header[0] != 4:
            return {"status": None, "event": f"pdu {header[:1].hex()}"}
        body = sock.recv(struct.unpack(">I", header[2:])[0], socket.MSG_WAITALL)
        offset = 0
        while offset < len(body):
            length = struct.unpack(">I", body[offset : offset + 4])[0]
            control = body[offset + 5]
            command += body[offset + 6 : offset + 4 + length]
            offset += 4 + length
            if control & 0x03 == 0x03:
                ds = read_dataset(DicomBytesIO(command), True, True)
                return {"status": ds.Status, "comment": str(ds.get("ErrorComment", ""))}


def data_set(sop_instance):
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = sop_instance + ".1"
    ds.SeriesInstanceUID = sop_instance + ".2"
    ds.PatientID = "HOSTILE"
    ds.PatientName = "Hostile^Peer"
    return encode(ds, False)


def silent(host, port, called):
    sock = socket.create_connection((host, port))
    return {"event": next_event(sock)}


def idle(host, port, called):
    sock = established(host, port, called)
    return {"event": next_event(sock)}


def mismatch(host, port, called, command_uid, data_uid):
    sock = established(host, port, called)
    sock.sendall(pdata(1, 0x03, store_command(command_uid)))
    sock.sendall(pdata(1, 0x02, data_set(data_uid)))
    return store_response(sock)


def no_instance_uid(host, port, called, data_uid):
    command = Dataset()
    command.AffectedSOPClassUID = SECONDARY_CAPTURE
    command.CommandField = 0x0001
    command.MessageID = 9
    command.Priority = 0
    command.CommandDataSetType = 0x0000
    sock = established(host, port, called)
    sock.sendall(pdata(1, 0x03, command_bytes(command)))
    sock.sendall(pdata(1, 0x02, data_set(data_uid)))
    return store_response(sock)


def context_switch(host, port, called, data_uid):
    sock = established(host, port, called)
    sock.sendall(pdata(1, 0x03, store_command(data_uid)))
    sock.sendall(pdata(3, 0x02, data_set(data_uid)))
    return {"event": next_event(sock)}


def unknown_command(host, port, called, megabytes):
    command = Dataset()
    command.RequestedSOPClassUID = SECONDARY_CAPTURE
    command.CommandField = 0x0120
    command.MessageID = 11
    command.CommandDataSetType = 0x0000
    command.RequestedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.102005"
    sock = established(host, port, called)
    sock.sendall(pdata(1, 0x03, command_bytes(command)))
    fragment = bytes(16000)
    for _ in range(int(megabytes) * 1_000_000 // len(fragment)):
        sock.sendall(pdata(1, 0x00, fragment))
    sock.sendall(pdata(1, 0x02, b""))
    return store_response(sock)


def get_association_rq(called, calling):
    """A-ASSOCIATE-RQ for C-GET (context 1) with CT storage as SCP (context 3)."""
    get_context = item(
        0x20, bytes([1, 0, 0, 0]) + item(0x30, STUDY_ROOT_GET.encode()) + item(0x40, IMPLICIT_LE.encode())
    )
    store_context = item(
        0x20, bytes([3, 0, 0, 0]) + item(0x30, CT_IMAGE_STORAGE.encode()) + item(0x40, EXPLICIT_LE.encode())
    )
    uid = CT_IMAGE_STORAGE.encode()
    role = item(0x54, struct.pack(">H", len(uid)) + uid + bytes([0, 1]))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4") + role)
    body = (
        struct.pack(">HH", 1, 0)
        + called.ljust(16).encode()
        + calling.ljust(16).encode()
        + bytes(32)
        + item(0x10, b"1.2.840.10008.3.1.1.1")
        + get_context
        + store_context
        + user
    )
    return struct.pack(">BBI", 1, 0, len(body)) + body


def listener_state(listen_port, client_port):
    """Return the TCP state of the listener's end of one connection, from /proc."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in lines.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if (local_port, remote_port) == (listen_port, client_port):
                    return "established" if fields[3] == "01" else "closing"
    return "gone"


def stalled_get(host, port, called, study):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(get_association_rq(called, "HOSTILE"))
    sock.settimeout(WAIT_SECONDS)
    header = sock.recv(6, socket.MSG_WAITALL)
    sock.recv(struct.unpack(">I", header[2:])[0], socket.MSG_WAITALL)
    if header[0] != 2:
        return {"state": f"association not accepted: PDU type {header[0]}"}

    command = Dataset()
    command.AffectedSOPClassUID = STUDY_ROOT_GET
    command.CommandField = 0x0010
    command.MessageID = 1
    command.Priority = 0
    command.CommandDataSetType = 0x0000
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study
    sock.sendall(pdata(1, 0x03, command_bytes(command)))
    sock.sendall(pdata(1, 0x02, encode(identifier, True)))

    client_port = sock.getsockname()[1]
    deadline = time.monotonic() + WAIT_SECONDS
    state = listener_state(port, client_port)
    while state == "established" and time.monotonic() < deadline:
        time.sleep(0.5)
        state = listener_state(port, client_port)
    return {"state": state}


def main():
    host, port, called, case = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cases = {
        "silent": silent,
        "idle": idle,
        "mismatch": mismatch,
        "no_instance_uid": no_instance_uid,
        "context_switch": context_switch,
        "unknown_command": unknown_command,
        "stalled_get": stalled_get,
    }
    json.dump(cases[case](host, port, called, *sys.argv[5:]), sys.stdout)


if __name__ == "__main__":
    main()
