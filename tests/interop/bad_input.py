"""Send malformed and hostile input to a DICOM listener over raw sockets
and print what the listener did in each case as JSON.

Usage: bad_input.py HOST PORT CALLED_AE SOP_INSTANCE_UID

Cases: garbage bytes, a PDU header announcing 4 GiB, a P-DATA-TF larger
than the negotiated maximum, and a C-STORE whose connection closes in the
middle of its data set (its instance must not be stored; the test checks
SOP_INSTANCE_UID afterwards).
"""

import json
import struct
import sys

from pydicom.dataset import Dataset

from rawpdu import SECONDARY_CAPTURE, connect, encode, established, outcome, pdata, store_command


def data_set(sop_instance):
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = sop_instance + ".1"
    ds.SeriesInstanceUID = sop_instance + ".2"
    ds.PatientName = "Partial^Transfer"
    ds.ImageComments = "x" * 200000
    return encode(ds, False)


def main():
    host, port, called, sop_instance = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    results = {}

    sock = connect(host, port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: tessera\r\n\r\n" + bytes(64))
    results["garbage"] = outcome(sock)
    sock.close()

    sock = connect(host, port)
    sock.sendall(struct.pack(">BBI", 1, 0, 0xFFFFFFF0) + bytes(64))
    results["huge_associate"] = outcome(sock)
    sock.close()

    sock = established(host, port, called)
    sock.sendall(struct.pack(">BBI", 4, 0, 1 << 24) + bytes(1024))
    results["oversized_pdata"] = outcome(sock)
    sock.close()

    sock = established(host, port, called)
    sock.sendall(pdata(1, 0x03, store_command(sop_instance)))
    payload = data_set(sop_instance)
    for start in range(0, 48000, 16000):
        sock.sendall(pdata(1, 0x00, payload[start : start + 16000]))
    sock.close()
    results["disconnect_mid_store"] = "sent"

    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
