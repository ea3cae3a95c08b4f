"""Send a C-FIND-RQ and its C-CANCEL-RQ in one write, then print the final
status and the number of pending responses as JSON.

Usage: cancel.py HOST PORT CALLED_AE CALLING_AE LEVEL KEYWORD=VALUE...

pynetdicom sends a C-CANCEL only after it has read a pending response, by
which time a fast SCP may have sent every match. Writing both requests at
once makes the cancel reach the SCP before its first response, so the
outcome does not depend on timing.
"""

import json
import struct
import sys

from pydicom.dataset import Dataset

from rawpdu import command_bytes, encode, established, pdata, read_pdu

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def find_request(level, keys):
    command = Dataset()
    command.AffectedSOPClassUID = STUDY_ROOT_FIND
    command.CommandField = 0x0020
    command.MessageID = 11
    command.Priority = 0
    command.CommandDataSetType = 0x0000
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for key in keys:
        keyword, _, value = key.partition("=")
        setattr(identifier, keyword, value)
    return pdata(1, 0x03, command_bytes(command)) + pdata(1, 0x02, encode(identifier, False))


def cancel_request():
    command = Dataset()
    command.CommandField = 0x0FFF
    command.MessageIDBeingRespondedTo = 11
    command.CommandDataSetType = 0x0101
    return pdata(1, 0x03, command_bytes(command))


def status_of(command):
    """Returns (0000,0900) of an implicit VR little endian command set."""
    offset = 0
    while offset + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHI", command, offset)
        if (group, element) == (0x0000, 0x0900):
            return struct.unpack_from("<H", command, offset + 8)[0]
        offset += 8 + length
    return None


def main():
    host, port, called, calling, level = sys.argv[1:6]
    sock = established(host, int(port), called, calling, STUDY_ROOT_FIND)
    sock.sendall(find_request(level, sys.argv[6:]) + cancel_request())
    pending = 0
    while True:
        kind, body = read_pdu(sock)
        if kind != 4:
            json.dump({"error": f"PDU type {kind} before the final response"}, sys.stdout)
            return
        # One PDV per PDU: length (4), context id (1), control header (1).
        control = body[5]
        if not control & 0x01:
            continue
        status = status_of(body[6:])
        if status in (0xFF00, 0xFF01):
            pending += 1
            continue
        json.dump({"status": status, "pending": pending}, sys.stdout)
        return


if __name__ == "__main__":
    main()
