"""Hand-built upper layer PDUs and DIMSE commands, for tests that must
control exactly which bytes reach the listener and when."""

import socket
import struct

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


def item(kind, payload):
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def associate_rq(called, calling, max_pdu=16384, abstract_syntax=None):
    return associate_context_rq(called, calling, abstract_syntax or SECONDARY_CAPTURE, EXPLICIT_LE, max_pdu)


def associate_context_rq(called, calling, abstract_syntax, transfer_syntax, max_pdu=16384):
    """Returns an A-ASSOCIATE-RQ with one presentation context (id 1)."""
    contexts = item(
        0x20,
        bytes([1, 0, 0, 0]) + item(0x30, abstract_syntax.encode()) + item(0x40, transfer_syntax.encode()),
    )
    user = item(0x50, item(0x51, struct.pack(">I", max_pdu)) + item(0x52, b"1.2.3.4"))
    body = (
        struct.pack(">HH", 1, 0)
        + called.ljust(16).encode()
        + calling.ljust(16).encode()
        + bytes(32)
        + item(0x10, b"1.2.840.10008.3.1.1.1")
        + contexts
        + user
    )
    return struct.pack(">BBI", 1, 0, len(body)) + body


def read_pdu(sock):
    header = recv_exact(sock, 6)
    if header is None:
        return None, b""
    kind, _, length = struct.unpack(">BBI", header)
    return kind, recv_exact(sock, length) or b""


def recv_exact(sock, count):
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    return data


def outcome(sock):
    """Returns what the listener sent next: 'abort', 'reject', 'closed' or a PDU type."""
    kind, _ = read_pdu(sock)
    return {None: "closed", 3: "reject", 7: "abort"}.get(kind, f"pdu {kind}")


def connect(host, port):
    sock = socket.create_connection((host, port), timeout=20)
    return sock


def established(host, port, called, calling="BADINPUT", abstract_syntax=None):
    sock = connect(host, port)
    sock.sendall(associate_rq(called, calling, abstract_syntax=abstract_syntax))
    kind, _ = read_pdu(sock)
    if kind != 2:
        raise SystemExit(f"association not accepted: PDU type {kind}")
    return sock


def pdata(context_id, control, payload):
    pdv = struct.pack(">IB", len(payload) + 2, context_id) + bytes([control]) + payload
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def encode(ds, implicit):
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = implicit
    write_dataset(buffer, ds)
    return buffer.getvalue()


def command_bytes(command):
    body = encode(command, True)
    length = Dataset()
    length.CommandGroupLength = len(body)
    return encode(length, True) + body


def store_command(sop_instance):
    command = Dataset()
    command.AffectedSOPClassUID = SECONDARY_CAPTURE
    command.CommandField = 0x0001
    command.MessageID = 7
    command.Priority = 0
    command.CommandDataSetType = 0x0000
    command.AffectedSOPInstanceUID = sop_instance
    return command_bytes(command)
