"""Keeps pynetdicom's reactor thread away from the responses of an SCU.

Each pynetdicom association runs a reactor thread that polls the DIMSE
message queue with get_msg(block=False) to serve requests from the peer.
Before send_c_store waits for its response, pynetdicom 3.0.4 pauses the
reactor: it clears a checkpoint event and waits for the reactor's
_is_paused flag. The reactor sets that flag before it waits on the
checkpoint, so the flag is also true while the reactor has just passed the
still open checkpoint and is about to poll the queue. send_c_store then
sends the request at once, and a response that arrives in that gap is
taken by the reactor, which drops it as an unexpected C-STORE message.
send_c_store waits until its DIMSE timeout and the association is aborted,
although the peer sent the response. A fast response (to a duplicate that the
archive already stores) and a busy machine make the gap matter.
"""


def leave_responses_to_caller(assoc):
    """Makes the reactor of `assoc` take no message off the DIMSE queue.

    Only for an association whose every message arrives while a send_*
    call waits for it with get_msg(block=True): a Storage, Query or
    Retrieve SCU's, where send_c_get also reads the C-STORE requests of
    its sub-operations. The messages stay queued for that call. In
    pynetdicom 3.0.4 the reactor is the only caller of
    get_msg(block=False).
    """
    dimse = assoc.dimse
    take = dimse.get_msg

    def take_only_when_waiting(block=False):
        if not block:
            return None, None
        return take(block=True)

    dimse.get_msg = take_only_when_waiting
