"""Drive Tessera's DICOMweb endpoints with dicomweb-client and pydicom's test files.

Usage: dicomweb_corpus.py STORE_URL READ_URL

Every file that pydicom ships is stored through STORE_URL (one node), then
searched, retrieved, read as metadata, frames and rendered images through
READ_URL (another node). Prints a JSON summary on stdout; the Rust test that
runs this script checks it. Exits with status 1 and a message on the first
check that fails here.
"""

import json
import os
import sys
import warnings

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

NUMBER_VRS = {"IS", "DS", "FL", "FD", "SL", "SS", "SV", "UL", "US", "UV"}
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTANCE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def corpus_files():
    """Every file under pydicom's test_files folder, subfolders included."""
    root = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    for folder, _, names in os.walk(root):
        for name in names:
            yield os.path.join(folder, name)


def store_all(client, store_url):
    """Store each corpus file alone, so each outcome maps to one file."""
    stored = {}
    rejected = []
    for path in sorted(corpus_files()):
        with open(path, "rb") as source:
            data = source.read()
        try:
            response = client._http_post_multipart_application_dicom(
                f"{store_url}/studies", [data]
            )
            status = 200
        except requests.HTTPError as error:
            status = error.response.status_code
            if status != 409:
                fail(f"{path}: STOW-RS returned {status}: {error.response.text}")
            response = pydicom.Dataset.from_json(error.response.json())

        if status == 200:
            item = response.ReferencedSOPSequence[0]
            uid = item.ReferencedSOPInstanceUID
            stored.setdefault(uid, (path, data, item.RetrieveURL))
            continue
        failed = response.FailedSOPSequence[0]
        reason = str(failed.get((0x0000, 0x0902)).value if (0x0000, 0x0902) in failed else "")
        if not failed.FailureReason or not reason:
            fail(f"{path}: failure listed without a reason code and text")
        rejected.append([path, int(failed.FailureReason), reason])
    return stored, rejected


def check_search(client, stored):
    studies = {s["0020000D"]["Value"][0] for s in client.search_for_studies()}
    instances = 0
    for uid, (path, data, url) in stored.items():
        study = url.split("/studies/")[1].split("/")[0]
        if study not in studies:
            fail(f"{path}: study {study} missing from QIDO-RS studies")
    for study in studies:
        instances += len(client.search_for_instances(study_instance_uid=study))
    return len(studies), instances


def split_url(url):
    parts = url.split("/")
    return parts[-5], parts[-3], parts[-1]


def check_retrieve(client, read_url, stored):
    identical = 0
    for uid, (path, data, url) in stored.items():
        study, series, instance = split_url(url)
        target = f"{read_url}/studies/{study}/series/{series}/instances/{instance}"
        # dicomweb-client parses retrieved instances into data sets; its own
        # session and multipart decoder give the bytes for the comparison.
        response = client._session.get(target, headers={"Accept": INSTANCE_ACCEPT})
        response.raise_for_status()
        parts = list(client._decode_multipart_message(response, stream=False))
        dataset = next(client._http_get_multipart_application_dicom(
            target, media_types=(("application/dicom", "*"),)
        ))
        if dataset.SOPInstanceUID != instance:
            fail(f"{path}: retrieved data set has another SOP Instance UID")
        if len(parts) != 1 or parts[0] != data:
            fail(f"{path}: WADO-RS instance differs from the stored file")
        identical += 1
    return identical


def check_json_value(keyword_path, attribute, seen):
    vr = attribute.get("vr")
    if vr is None:
        fail(f"{keyword_path}: attribute without vr")
    seen.add(vr)
    values = attribute.get("Value")
    if values is not None and len(values) == 0:
        fail(f"{keyword_path}: empty Value array, expected no Value key")
    if vr in BINARY_VRS:
        if values is not None:
            fail(f"{keyword_path}: binary VR {vr} with Value")
        return
    for value in values or []:
        if value is None:
            continue
        if vr == "PN" and not isinstance(value, dict):
            fail(f"{keyword_path}: PN value {value!r} is not an object")
        if vr == "PN" and set(value) - {"Alphabetic", "Ideographic", "Phonetic"}:
            fail(f"{keyword_path}: PN value {value!r} has unknown components")
        if vr in NUMBER_VRS and not isinstance(value, (int, float)):
            # A malformed IS/DS in the source is kept as a string rather than lost.
            if vr not in ("IS", "DS"):
                fail(f"{keyword_path}: {vr} value {value!r} is not a number")
            seen.add(f"{vr}-as-string")
        if vr == "AT" and not (isinstance(value, str) and len(value) == 8):
            fail(f"{keyword_path}: AT value {value!r} is not eight hex digits")
        if vr == "SQ":
            if not isinstance(value, dict):
                fail(f"{keyword_path}: SQ item is not an object")
            for tag, nested in value.items():
                check_json_value(f"{keyword_path}.{tag}", nested, seen)


def check_metadata(client, stored):
    seen = set()
    checked = 0
    with_pixels = []
    for uid, (path, data, url) in stored.items():
        study, series, instance = split_url(url)
        metadata = client.retrieve_instance_metadata(study, series, instance)
        found = metadata.get("00080018", {}).get("Value", [None])[0]
        if found != instance:
            fail(f"{path}: metadata names SOP Instance UID {found!r}, not {instance}")
        for tag, attribute in metadata.items():
            check_json_value(f"{path}:{tag}", attribute, seen)
        pixel = metadata.get("7FE00010")
        if pixel is not None:
            if "BulkDataURI" not in pixel and "InlineBinary" not in pixel:
                fail(f"{path}: Pixel Data without BulkDataURI or InlineBinary")
            with_pixels.append((path, study, series, instance, metadata))
        checked += 1
    return checked, sorted(seen), with_pixels


def check_frames(client, with_pixels):
    ok = 0
    rejected = []
    for path, study, series, instance, metadata in with_pixels:
        try:
            frames = client.retrieve_instance_frames(
                study, series, instance, frame_numbers=[1],
                media_types=(("application/octet-stream", "*"),),
            )
        except requests.HTTPError as error:
            rejected.append([path, error.response.status_code, error.response.text.strip()])
            continue
        if len(frames) != 1 or len(frames[0]) == 0:
            fail(f"{path}: frame 1 came back empty")
        ok += 1
    return ok, rejected


def check_rendered(client, with_pixels):
    ok = 0
    rejected = []
    for path, study, series, instance, metadata in with_pixels:
        try:
            image = client.retrieve_instance_rendered(
                study, series, instance, media_types=("image/png",)
            )
        except requests.HTTPError as error:
            if error.response.status_code not in (406, 415):
                fail(f"{path}: rendering failed with {error.response.status_code}")
            rejected.append([path, error.response.status_code, error.response.text.strip()])
            continue
        if not image.startswith(PNG_SIGNATURE):
            fail(f"{path}: rendered image is not a PNG")
        ok += 1
    return ok, rejected


def main():
    store_url, read_url = sys.argv[1], sys.argv[2]
    # Failure reasons are longer than LO's 64 characters; pydicom warns.
    warnings.filterwarnings("ignore", message="The value length")
    writer = DICOMwebClient(url=store_url)
    reader = DICOMwebClient(url=read_url)

    stored, rejected = store_all(writer, store_url)
    studies, instances = check_search(reader, stored)
    identical = check_retrieve(reader, read_url, stored)
    checked, vrs, with_pixels = check_metadata(reader, stored)
    frames_ok, frames_rejected = check_frames(reader, with_pixels)
    rendered_ok, rendered_rejected = check_rendered(reader, with_pixels)

    print(json.dumps({
        "stored": len(stored),
        "rejected": rejected,
        "studies": studies,
        "instances_found": instances,
        "retrieved_identical": identical,
        "metadata_checked": checked,
        "vrs_seen": vrs,
        "with_pixel_data": len(with_pixels),
        "frames_ok": frames_ok,
        "frames_rejected": frames_rejected,
        "rendered_ok": rendered_ok,
        "rendered_rejected": rendered_rejected,
    }))


if __name__ == "__main__":
    main()
