"""Store DICOM files with pynetdicom, optionally over many associations at
once, and print one JSON object per file with the C-STORE status.

Usage: store.py HOST PORT CALLED_AE [--calling AE] [--associations N]
                [--repeat FILE] FILE...

With --associations N the files are spread over N associations that run
at the same time, each in its own process. Every association also stores
each --repeat file, so the same instance arrives on several associations
at once.

pynetdicom 3.0.4 can drop a response that arrives right after its request,
and send_c_store then waits until its DIMSE timeout: scu_reactor.py
explains the race and how each association here avoids it. Before that
workaround, 32 associations in threads of one process lost up to three of
80 C-STORE responses per run on a 2-core machine, and 32 processes lost one
in about every fourth run, in both cases although the node had sent every
response. Processes remain, so that the associations share no interpreter
lock.
"""

import argparse
import json
import sys
import multiprocessing

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.presentation import build_context

from scu_reactor import leave_responses_to_caller


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("--calling", default="PYNETDICOM")
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--repeat", action="append", default=[])
    parser.add_argument("files", nargs="*")
    return parser.parse_intermixed_args()


def store_all(args, paths):
    datasets = [(path, dcmread(path)) for path in paths]
    ae = AE(ae_title=args.calling)
    # Many processes share two cores in the concurrency test. 120 s leaves
    # a slow response room there, and a missing one still ends the run.
    ae.dimse_timeout = 120
    contexts = {
        (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for _, ds in datasets
    }
    for sop_class, syntax in sorted(contexts):
        ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate(args.host, args.port, ae_title=args.called)
    if not assoc.is_established:
        return [{"file": p, "status": None, "error": "association failed"} for p in paths]
    leave_responses_to_caller(assoc)
    results = []
    for path, ds in datasets:
        status = assoc.send_c_store(ds)
        entry = {"file": path, "status": status.Status if status else None}
        if not status:
            entry["aborted"] = assoc.is_aborted
            entry["established"] = assoc.is_established
        if status and "ErrorComment" in status:
            entry["comment"] = str(status.ErrorComment)
        results.append(entry)
    assoc.release()
    return results


def main():
    args = parse_args()
    groups = [args.files[i :: args.associations] + args.repeat for i in range(args.associations)]
    groups = [group for group in groups if group]
    if len(groups) == 1:
        json.dump(store_all(args, groups[0]), sys.stdout)
        return
    with multiprocessing.Pool(len(groups)) as pool:
        batches = pool.starmap(store_all, [(args, group) for group in groups])
    json.dump([entry for batch in batches for entry in batch], sys.stdout)


if __name__ == "__main__":
    main()
