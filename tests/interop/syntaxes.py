"""Prepare and check instances for the transfer syntax conversion tests.

Usage:
  syntaxes.py prepare OUTDIR
      Copies pydicom's sample files in several transfer syntaxes into
      OUTDIR with fresh SOP Instance UIDs, all in one new study, and prints
      a JSON list of {"path", "uid", "syntax", "name"}.
  syntaxes.py classes OUTDIR COUNT
      Writes COUNT small instances, each of its own private SOP class, in
      one new study, and prints {"study": ..., "paths": [...]}.
  syntaxes.py compare ORIGINAL RECEIVED
      Decodes both files with pydicom and prints JSON: the received
      transfer syntax, the largest absolute pixel difference, and the
      keywords of non-pixel elements whose values differ.

Only files already on disk are read: pydicom.data.get_testdata_file would
try to download missing ones.
"""

import json
import os
import sys

import numpy
import pydicom
import pydicom.data
import pydicom.datadict
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SAMPLES = [
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    # JPEG-LS, which the archive cannot decode: its sub-operations fail.
    "MR_small_jpeg_ls_lossless.dcm",
]

# Elements that decoding pixel data changes on purpose: colour JPEG becomes
# RGB with interleaved samples. The file meta group is compared apart.
CHANGED_BY_DECODING = {"PhotometricInterpretation", "PlanarConfiguration"}


def sample_path(name):
    folder = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")
    return os.path.join(folder, name)


def prepare(outdir):
    study = generate_uid()
    series = generate_uid()
    prepared = []
    for name in SAMPLES:
        ds = pydicom.dcmread(sample_path(name))
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.PatientID = "SYNTAXES"
        path = os.path.join(outdir, name)
        ds.save_as(path, enforce_file_format=True)
        prepared.append(
            {
                "path": path,
                "uid": uid,
                "syntax": str(ds.file_meta.TransferSyntaxUID),
                "name": name,
            }
        )
    json.dump({"study": study, "files": prepared}, sys.stdout)


def classes(outdir, count):
    study = generate_uid()
    series = generate_uid()
    paths = []
    for n in range(count):
        ds = Dataset()
        ds.SOPClassUID = f"1.2.826.0.1.3680043.8.498.77.{n + 1}"
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.PatientID = "CLASSES"
        ds.PatientName = "Classes^Many"
        ds.Modality = "OT"
        ds.InstanceNumber = n + 1
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = os.path.join(outdir, f"class{n + 1}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    json.dump({"study": study, "paths": paths}, sys.stdout)


def compare(original_path, received_path):
    original = pydicom.dcmread(original_path)
    received = pydicom.dcmread(received_path)
    expected = original.pixel_array.astype(numpy.int64)
    actual = received.pixel_array.astype(numpy.int64)
    if expected.shape != actual.shape:
        difference = None
    else:
        difference = int(numpy.abs(expected - actual).max())
    differing = []
    for tag in sorted(set(original.keys()) | set(received.keys())):
        keyword = pydicom.datadict.keyword_for_tag(tag) or str(tag)
        if keyword == "PixelData" or keyword in CHANGED_BY_DECODING:
            continue
        if tag not in original or tag not in received:
            differing.append(keyword)
        elif original[tag].value != received[tag].value:
            differing.append(keyword)
    json.dump(
        {
            "syntax": str(received.file_meta.TransferSyntaxUID),
            "shape": list(actual.shape),
            "expected_shape": list(expected.shape),
            "max_difference": difference,
            "differing": differing,
            "photometric": str(received.get("PhotometricInterpretation", "")),
        },
        sys.stdout,
    )


def main():
    command = sys.argv[1]
    if command == "prepare":
        prepare(sys.argv[2])
    elif command == "classes":
        classes(sys.argv[2], int(sys.argv[3]))
    elif command == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {command}; use prepare, classes or compare")


if __name__ == "__main__":
    main()
