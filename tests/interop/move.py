"""Run one C-MOVE or C-GET with pynetdicom and print the final status, the
sub-operation counts and, for C-GET, the instances received, as JSON.

Usage: move.py HOST PORT CALLED_AE --level STUDY --key Keyword=value...
               [--destination AE] [--get SOP_CLASS:TRANSFER_SYNTAX...]
               [--save DIR]

Without --destination the request is a C-GET on the same association,
proposing each --get pair with SCP role selection. TRANSFER_SYNTAX may be
a comma-separated list. With --save, each instance received by C-GET is
written to DIR as a Part 10 file named by its SOP Instance UID.
"""

import argparse
import json
import os
import sys

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from scu_reactor import leave_responses_to_caller


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("--level", required=True)
    parser.add_argument("--key", action="append", default=[])
    parser.add_argument("--destination")
    parser.add_argument("--get", action="append", default=[])
    parser.add_argument("--save")
    return parser.parse_intermixed_args()


def failed_uids(identifier):
    """Returns Failed SOP Instance UID List, which pydicom reads as a
    string when it has one value."""
    if identifier is None or "FailedSOPInstanceUIDList" not in identifier:
        return []
    value = identifier.FailedSOPInstanceUIDList
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def main():
    args = parse_args()
    identifier = Dataset()
    identifier.QueryRetrieveLevel = args.level
    for key in args.key:
        keyword, _, value = key.partition("=")
        setattr(identifier, keyword, value)

    received = []

    def on_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        received.append(uid)
        if args.save:
            with open(os.path.join(args.save, uid + ".dcm"), "wb") as file:
                file.write(event.encoded_dataset())
        return 0x0000

    ae = AE(ae_title="MOVESCU")
    roles = []
    if args.destination:
        model = StudyRootQueryRetrieveInformationModelMove
        ae.add_requested_context(model)
    else:
        model = StudyRootQueryRetrieveInformationModelGet
        ae.add_requested_context(model)
        for pair in args.get:
            sop_class, syntax = pair.split(":", 1)
            ae.add_requested_context(sop_class, syntax.split(","))
            roles.append(build_role(sop_class, scp_role=True))
    assoc = ae.associate(
        args.host,
        args.port,
        ae_title=args.called,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    if not assoc.is_established:
        json.dump({"error": "association failed"}, sys.stdout)
        return
    leave_responses_to_caller(assoc)
    if args.destination:
        responses = assoc.send_c_move(identifier, args.destination, model)
    else:
        responses = assoc.send_c_get(identifier, model)
    final = {}
    pending = 0
    for status, found in responses:
        if status is None:
            break
        if status.Status == 0xFF00:
            pending += 1
            continue
        final = {
            "status": status.Status,
            "completed": status.get("NumberOfCompletedSuboperations"),
            "failed": status.get("NumberOfFailedSuboperations"),
            "warning": status.get("NumberOfWarningSuboperations"),
            "comment": str(status.get("ErrorComment", "")),
            "failed_uids": failed_uids(found),
        }
    assoc.release()
    final["pending"] = pending
    final["received"] = received
    json.dump(final, sys.stdout)


if __name__ == "__main__":
    main()
