"""Write instances with the sequences that Tessera indexes, for the sequence
matching tests.

Usage: sequences.py OUTPUT_DIR

Writes three Part 10 files and prints a JSON list with, for each, its path
and its Study, Series and SOP Instance UIDs:

- a CT of patient SEQ-1 in ISO_IR 100, with two Request Attributes items
  (RP1/SPS1 and RP2/SPS2), a Procedure Code whose meaning is "Schädel CT",
  an Other Patient IDs item and a Referenced Study item;
- an MR of patient SEQ-2, with one Request Attributes item (RP3/SPS3) and
  the Procedure Code MRKNEE;
- a Basic Text SR in the MR's study whose Concept Name Code is LOINC
  18748-4.
"""

import json
import os
import sys

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

ROOT = "1.2.826.0.1.3680043.8.498.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def item(**attributes):
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def instance(charset, patient, study, series, sop, sop_class, modality):
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"{ROOT}.{sop}"
    ds.StudyInstanceUID = f"{ROOT}.{study}"
    ds.SeriesInstanceUID = f"{ROOT}.{series}"
    ds.PatientID = patient
    ds.PatientName = f"SEQUENCE^{patient}"
    ds.StudyDate = "20240301"
    ds.Modality = modality
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    return ds


def write(ds, directory, name):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path = os.path.join(directory, name)
    ds.save_as(path, enforce_file_format=True)
    return {
        "path": path,
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "sop": ds.SOPInstanceUID,
    }


def main():
    directory = sys.argv[1]

    ct = instance("ISO_IR 100", "SEQ-1", 1, 11, 111, CT_IMAGE, "CT")
    ct.RequestAttributesSequence = Sequence(
        [
            item(RequestedProcedureID="RP1", ScheduledProcedureStepID="SPS1"),
            item(RequestedProcedureID="RP2", ScheduledProcedureStepID="SPS2"),
        ]
    )
    ct.ProcedureCodeSequence = Sequence(
        [
            item(
                CodeValue="CTHEAD",
                CodingSchemeDesignator="LOCAL",
                CodeMeaning="Schädel CT",
            )
        ]
    )
    ct.OtherPatientIDsSequence = Sequence(
        [item(PatientID="X-9", IssuerOfPatientID="SITE-B")]
    )
    ct.ReferencedStudySequence = Sequence(
        [
            item(
                ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
                ReferencedSOPInstanceUID=f"{ROOT}.900",
            )
        ]
    )

    mr = instance("", "SEQ-2", 2, 21, 211, MR_IMAGE, "MR")
    mr.RequestAttributesSequence = Sequence(
        [item(RequestedProcedureID="RP3", ScheduledProcedureStepID="SPS3")]
    )
    mr.ProcedureCodeSequence = Sequence(
        [item(CodeValue="MRKNEE", CodingSchemeDesignator="LOCAL", CodeMeaning="Knee MR")]
    )

    sr = instance("", "SEQ-2", 2, 22, 221, BASIC_TEXT_SR, "SR")
    sr.ValueType = "CONTAINER"
    sr.ContinuityOfContent = "SEPARATE"
    sr.ConceptNameCodeSequence = Sequence(
        [
            item(
                CodeValue="18748-4",
                CodingSchemeDesignator="LN",
                CodeMeaning="Diagnostic Imaging Report",
            )
        ]
    )

    written = [
        write(ct, directory, "ct.dcm"),
        write(mr, directory, "mr.dcm"),
        write(sr, directory, "sr.dcm"),
    ]
    json.dump(written, sys.stdout)


if __name__ == "__main__":
    main()
