"""Run one C-FIND with pynetdicom and print the matches and final status as
JSON.

Usage: find.py HOST PORT CALLED_AE --level STUDY [--model study|patient]
               [--charset 'ISO_IR 100'] [--key Keyword=value]...
               [--cancel-after N] [--encoding explicit|implicit]

Values are given as Unicode and encoded by pydicom in --charset. A key
Sequence.Keyword=value puts an item key in the one item of a sequence key,
and Sequence= sends the sequence key with no item. Each match is printed
with its Specific Character Set and its values decoded by pydicom, as a
client would display them, a sequence as a list of its items.
"""

import argparse
import json
import sys

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from scu_reactor import leave_responses_to_caller


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("--level", required=True)
    parser.add_argument("--model", default="study")
    parser.add_argument("--charset", default="")
    parser.add_argument("--key", action="append", default=[])
    parser.add_argument("--cancel-after", type=int, default=0)
    parser.add_argument("--encoding", default="explicit")
    return parser.parse_intermixed_args()


def identifier(args):
    ds = Dataset()
    if args.charset:
        ds.SpecificCharacterSet = args.charset.split("\\")
    ds.QueryRetrieveLevel = args.level
    for key in args.key:
        keyword, _, value = key.partition("=")
        sequence, _, item_keyword = keyword.partition(".")
        if item_keyword:
            if sequence not in ds:
                setattr(ds, sequence, Sequence())
            if len(ds[sequence].value) == 0:
                ds[sequence].value.append(Dataset())
            setattr(ds[sequence].value[0], item_keyword, value)
        elif dictionary_VR(keyword) == "SQ":
            setattr(ds, keyword, Sequence())
        else:
            setattr(ds, keyword, value)
    return ds


def text(element):
    if element.VR == "SQ":
        return [
            {el.keyword: text(el) for el in item if el.keyword}
            for item in element.value
        ]
    value = element.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def main():
    args = parse_args()
    model = {
        "study": StudyRootQueryRetrieveInformationModelFind,
        "patient": PatientRootQueryRetrieveInformationModelFind,
    }[args.model]
    syntax = ExplicitVRLittleEndian if args.encoding == "explicit" else ImplicitVRLittleEndian
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(model, syntax)
    assoc = ae.associate(args.host, args.port, ae_title=args.called)
    if not assoc.is_established:
        json.dump({"error": "association failed"}, sys.stdout)
        return
    leave_responses_to_caller(assoc)
    matches = []
    final = None
    comment = None
    responses = assoc.send_c_find(identifier(args), model)
    for status, found in responses:
        if status is None:
            break
        if status.Status in (0xFF00, 0xFF01):
            found.decode()
            matches.append({el.keyword: text(el) for el in found if el.keyword})
            if args.cancel_after and len(matches) == args.cancel_after:
                context = assoc._get_valid_context(model, "", "scu")
                assoc.send_c_cancel(1, context.context_id)
        else:
            final = status.Status
            if "ErrorComment" in status:
                comment = str(status.ErrorComment)
    assoc.release()
    json.dump({"status": final, "comment": comment, "matches": matches}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
