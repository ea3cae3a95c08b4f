"""Provoke the pynetdicom reactor race that scu_reactor.py works around, and
check that the workaround keeps every response.

Usage: reactor_race.py PORT [--stores N]

Starts a Storage SCP on 127.0.0.1:PORT in this process and stores one
instance N times, each time on a new association, once as pynetdicom sets
an association up and once with leave_responses_to_caller. Two sleeps force
the schedule that a busy machine produces by chance: the reactor thread
stops right after it passes its still open checkpoint, and the thread that
sent the request stops before it takes the response off the queue. Prints,
as JSON, how many stores of each run got no response.
"""

import argparse
import json
import threading
import time

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import SecondaryCaptureImageStorage

from scu_reactor import leave_responses_to_caller

# Seconds the reactor sleeps after it passes its checkpoint, far longer than
# the in-process SCP takes to respond.
REACTOR_GAP = 0.3
# Seconds the sending thread sleeps before it waits for the response. This is
# longer than REACTOR_GAP, so the reactor polls the queue first.
CALLER_DELAY = 0.6
# Seconds a store waits for its response. The SCP responds in milliseconds,
# so a store that waits this long has lost its response.
DIMSE_TIMEOUT = 2


class SlowCheckpoint(threading.Event):
    """The reactor's checkpoint, with a sleep after each wait returns.

    `in_gap` is set once the reactor sleeps there, so that the sending
    thread can start its request then.
    """

    def __init__(self):
        super().__init__()
        self.in_gap = threading.Event()

    def wait(self, timeout=None):
        passed = super().wait(timeout)
        self.in_gap.set()
        time.sleep(REACTOR_GAP)
        return passed


def delay_waiting_caller(assoc):
    """Makes each blocking get_msg of `assoc` sleep CALLER_DELAY first."""
    dimse = assoc.dimse
    take = dimse.get_msg

    def take_late(block=False):
        if block:
            time.sleep(CALLER_DELAY)
        return take(block=block)

    dimse.get_msg = take_late


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--stores", type=int, default=3)
    return parser.parse_args()


def instance():
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "REACTOR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def store_once(port, dataset, workaround):
    """Stores `dataset` on a new association and returns whether a response came."""
    ae = AE(ae_title="REACTORSCU")
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="REACTORSCP")
    if not assoc.is_established:
        raise RuntimeError(f"no association with the SCP on port {port}")

    checkpoint = SlowCheckpoint()
    checkpoint.set()
    assoc._reactor_checkpoint = checkpoint
    delay_waiting_caller(assoc)
    if workaround:
        leave_responses_to_caller(assoc)

    if not checkpoint.in_gap.wait(timeout=DIMSE_TIMEOUT):
        raise RuntimeError("the reactor did not reach its checkpoint")
    status = assoc.send_c_store(dataset)
    answered = bool(status) and status.Status == 0x0000
    if assoc.is_established:
        assoc.release()
    return answered


def lost_responses(port, stores, workaround):
    dataset = instance()
    answered = [store_once(port, dataset, workaround) for _ in range(stores)]
    return answered.count(False)


def main():
    args = parse_args()
    scp = AE(ae_title="REACTORSCP")
    scp.add_supported_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    handlers = [(evt.EVT_C_STORE, lambda event: 0x0000)]
    server = scp.start_server(("127.0.0.1", args.port), block=False, evt_handlers=handlers)
    try:
        result = {
            "stores": args.stores,
            "lost_without_workaround": lost_responses(args.port, args.stores, False),
            "lost_with_workaround": lost_responses(args.port, args.stores, True),
        }
    finally:
        server.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
