"""Send the data set of each Part 10 file byte for byte with one C-STORE per
file, over hand-built PDUs, and print the statuses as JSON.

Usage: send_raw.py HOST PORT CALLED_AE CALLING_AE FILE...

DCMTK and pynetdicom re-encode a data set before sending it, so only raw
PDUs show whether the archive stores exactly the bytes it received.
"""

import json
import sys

from pydicom import dcmread
from pydicom.dataset import Dataset

from rawpdu import command_bytes, item, pdata, read_pdu, connect, associate_context_rq


def data_set_bytes(path):
    raw = open(path, "rb").read()
    length = int.from_bytes(raw[140:144], "little")
    return raw[144 + length :]


def status_of(command):
    offset = 0
    while offset + 8 <= len(command):
        group = int.from_bytes(command[offset : offset + 2], "little")
        element = int.from_bytes(command[offset + 2 : offset + 4], "little")
        length = int.from_bytes(command[offset + 4 : offset + 8], "little")
        if (group, element) == (0, 0x0900):
            return int.from_bytes(command[offset + 8 : offset + 10], "little")
        offset += 8 + length
    return None


def store(host, port, called, calling, path):
    meta = dcmread(path, stop_before_pixels=True).file_meta
    sop_class = str(meta.MediaStorageSOPClassUID)
    sop_instance = str(meta.MediaStorageSOPInstanceUID)
    sock = connect(host, port)
    sock.sendall(associate_context_rq(called, calling, sop_class, str(meta.TransferSyntaxUID)))
    kind, _ = read_pdu(sock)
    if kind != 2:
        return {"file": path, "error": f"association answered with PDU type {kind}"}
    command = Dataset()
    command.AffectedSOPClassUID = sop_class
    command.CommandField = 0x0001
    command.MessageID = 1
    command.Priority = 0
    command.CommandDataSetType = 0x0000
    command.AffectedSOPInstanceUID = sop_instance
    sock.sendall(pdata(1, 0x03, command_bytes(command)))
    data = data_set_bytes(path)
    fragments = [data[i : i + 16000] for i in range(0, len(data), 16000)] or [b""]
    for index, fragment in enumerate(fragments):
        sock.sendall(pdata(1, 0x02 if index == len(fragments) - 1 else 0x00, fragment))
    kind, body = read_pdu(sock)
    sock.sendall(bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
    read_pdu(sock)
    sock.close()
    return {"file": path, "status": status_of(body[6:]) if kind == 4 else None}


def main():
    host, port, called, calling = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    results = [store(host, port, called, calling, path) for path in sys.argv[5:]]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
