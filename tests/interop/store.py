"""Store DICOM files with pynetdicom, optionally over many associations at
once, and print one JSON object per file with the C-STORE status.

Usage: store.py HOST PORT CALLED_AE [--calling AE] [--associations N]
                [--repeat FILE] FILE...

With --associations N the files are spread over N associations that run
at the same time; every association also stores each --repeat file, so
the same instance arrives concurrently on several associations.
"""

import argparse
import json
import sys
import threading

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.presentation import build_context


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("--calling", default="PYNETDICOM")
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--repeat", action="append", default=[])
    parser.add_argument("files", nargs="*")
    return parser.parse_args()


def store_all(args, paths, results, lock):
    datasets = [(path, dcmread(path)) for path in paths]
    ae = AE(ae_title=args.calling)
    contexts = {
        (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for _, ds in datasets
    }
    for sop_class, syntax in sorted(contexts):
        ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate(args.host, args.port, ae_title=args.called)
    if not assoc.is_established:
        with lock:
            results.extend({"file": p, "status": None, "error": "association failed"} for p in paths)
        return
    for path, ds in datasets:
        status = assoc.send_c_store(ds)
        entry = {"file": path, "status": status.Status if status else None}
        if status and "ErrorComment" in status:
            entry["comment"] = str(status.ErrorComment)
        with lock:
            results.append(entry)
    assoc.release()


def main():
    args = parse_args()
    groups = [args.files[i :: args.associations] + args.repeat for i in range(args.associations)]
    results = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=store_all, args=(args, group, results, lock))
        for group in groups
        if group
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
