"""Request storage commitment with pynetdicom (N-ACTION) and wait for the
N-EVENT-REPORT; print the result as JSON.

Usage: commit.py HOST PORT CALLED_AE [--listen PORT] [--wait SECONDS]
                 CLASS_UID:INSTANCE_UID...

By default the report is expected on the same association. With --listen
the script releases right after the N-ACTION response and expects the
report on a new association to its own listener on PORT. --wait sets how
long to wait for the report (30 s by default).
"""

import json
import sys
import threading

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel

WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"


def main():
    host, port, called = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rest = sys.argv[4:]
    listen = None
    wait = 30
    while rest[:1] in (["--listen"], ["--wait"]):
        if rest[0] == "--listen":
            listen = int(rest[1])
        else:
            wait = float(rest[1])
        rest = rest[2:]
    references = [arg.split(":", 1) for arg in rest]
    reports = []
    received = threading.Event()

    def on_report(event):
        info = event.event_information
        reports.append(
            {
                "event_type": event.event_type,
                "transaction": str(info.TransactionUID),
                "committed": [str(i.ReferencedSOPInstanceUID) for i in info.get("ReferencedSOPSequence", [])],
                "failed": [
                    {"uid": str(i.ReferencedSOPInstanceUID), "reason": int(i.FailureReason)}
                    for i in info.get("FailedSOPSequence", [])
                ],
            }
        )
        received.set()
        return 0x0000, None

    ae = AE(ae_title="COMMITSCU")
    # pynetdicom aborts an association silent for network_timeout (60 s).
    ae.network_timeout = wait + 30
    ae.add_requested_context(StorageCommitmentPushModel)
    handlers = [(evt.EVT_N_EVENT_REPORT, on_report)]
    server = None
    if listen:
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        server = ae.start_server(("127.0.0.1", listen), block=False, evt_handlers=handlers)
        handlers = []
    assoc = ae.associate(host, port, ae_title=called, evt_handlers=handlers)
    if not assoc.is_established:
        json.dump({"error": "association failed"}, sys.stdout)
        return
    request = Dataset()
    transaction = generate_uid()
    request.TransactionUID = transaction
    request.ReferencedSOPSequence = []
    for sop_class, sop_instance in references:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        request.ReferencedSOPSequence.append(item)
    status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN_INSTANCE)
    action_status = status.Status if status else None
    if listen:
        assoc.release()
        received.wait(timeout=wait)
        server.shutdown()
    else:
        received.wait(timeout=wait)
        assoc.release()
    json.dump({"action_status": action_status, "transaction": transaction, "reports": reports}, sys.stdout)


if __name__ == "__main__":
    main()
