"""A storage SCP that accepts every storage SOP class in the given transfer
syntaxes only, and writes each instance received to OUTDIR as a Part 10
file named by its SOP Instance UID.

Usage: syntax_scp.py PORT AE_TITLE OUTDIR TRANSFER_SYNTAX...
It prints "ready" once it listens and runs until killed.
"""

import os
import sys

from pynetdicom import AE, AllStoragePresentationContexts, evt


def main():
    port, ae_title, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    syntaxes = sys.argv[4:]

    def on_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        with open(os.path.join(outdir, uid + ".dcm"), "wb") as file:
            file.write(event.encoded_dataset())
        return 0x0000

    ae = AE(ae_title=ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, syntaxes)
    print("ready", flush=True)
    ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, on_store)])


if __name__ == "__main__":
    main()
