"""A storage SCP that accepts every instance except those whose SOP Instance
UID ends with one of the given suffixes, which get status 0xA700.

Usage: store_scp.py PORT AE_TITLE [FAIL_SUFFIX...]
It prints "ready" once it listens and runs until killed.
"""

import sys

from pynetdicom import AE, AllStoragePresentationContexts, evt


def main():
    port, ae_title, suffixes = int(sys.argv[1]), sys.argv[2], sys.argv[3:]

    def on_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        if any(uid.endswith(suffix) for suffix in suffixes):
            return 0xA700
        return 0x0000

    ae = AE(ae_title=ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_SYNTAXES)
    print("ready", flush=True)
    ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, on_store)])


ALL_SYNTAXES = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
]

if __name__ == "__main__":
    main()
