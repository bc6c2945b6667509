"""proxy/session.py without sockets: the hold queue a session keeps client bytes in, and its
statement accounting fed server messages (as h11 tests its Connection)."""

from __future__ import annotations

import struct

import pytest

from proxy import protocol as pq
from proxy.rewrites import ErrorHint
from proxy.session import SERVER_INSPECT, STARTUP_INSPECT, Held, HoldQueue, Session, Step


def test_nothing_is_held_until_a_hold_begins() -> None:
    queue = HoldQueue()
    assert not queue.holding
    with pytest.raises(RuntimeError):
        queue.keep(b"Q...", framed=False)


def test_bytes_kept_during_a_hold_come_back_in_arrival_order_with_their_kind() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"framed", framed=True)
    queue.keep(b"raw", framed=False)
    assert queue.holding
    assert queue.release() == [Held(b"framed", True), Held(b"raw", False)]
    assert not queue.holding


def test_bytes_wait_for_the_last_of_overlapping_holds() -> None:
    queue = HoldQueue()
    queue.hold()  # e.g. opening the upstream connection
    queue.hold()  # e.g. registering the engine endpoint
    queue.keep(b"a", framed=False)
    assert queue.release() == []
    assert queue.holding
    assert queue.release() == [Held(b"a", False)]


def test_a_release_leaves_the_queue_empty_for_the_next_hold() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"a", framed=False)
    queue.release()
    queue.hold()
    assert queue.release() == []


def test_requeued_items_come_after_what_the_new_hold_kept() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"first", framed=False)
    queue.keep(b"second", framed=False)
    _first, second = queue.release()
    # Relaying ``first`` started new work, which kept the rest of its own chunk.
    queue.hold()
    queue.keep(b"rest of first", framed=True)
    queue.requeue([second])
    assert queue.release() == [Held(b"rest of first", True), second]


def test_release_without_hold_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        HoldQueue().release()


# -- Session: statement accounting, fed server messages as the relay inspects them ----------

def server(mtype: bytes, body: bytes, ordinal: int = 0) -> pq.Message:
    return pq.Message(mtype, pq.message(mtype, body), ordinal)


def ready(ordinal: int, status: bytes = b"I") -> pq.Message:
    return server(pq.READY_FOR_QUERY, status, ordinal)


def started_session() -> Session:
    session = Session({"user": "alice", "database": "shop"})
    session.server_message(ready(1))
    return session


def test_startup_inspects_authentication_and_ready_then_only_key_and_parameters() -> None:
    session = Session()
    assert session.server_inspect == STARTUP_INSPECT
    session.server_message(ready(1))
    assert session.started
    assert session.server_inspect == SERVER_INSPECT


def test_backend_key_data_is_learned_and_asks_the_shell_to_record_the_session() -> None:
    session = Session()
    raw, step = session.server_message(server(pq.BACKEND_KEY_DATA, struct.pack("!II", 4242, 7)))
    assert step is Step.BACKEND_KEY
    assert session.backend_pid == 4242 and session.backend_key == struct.pack("!I", 7)
    assert raw == pq.message(pq.BACKEND_KEY_DATA, struct.pack("!II", 4242, 7))


def test_registration_is_one_step_at_the_ready_for_query_that_answers_the_statement() -> None:
    session = started_session()
    session.register_after(3)
    assert ord("Z") in session.server_inspect
    assert session.server_message(ready(2)) == (ready(2).raw, None)
    assert session.server_message(ready(3))[1] is Step.REGISTER_ENDPOINT
    assert session.register_at is None
    assert ord("Z") not in session.server_inspect
    assert session.server_message(ready(4))[1] is None


def test_registration_waits_for_the_transaction_to_commit() -> None:
    session = started_session()
    session.register_after(2)
    assert session.server_message(ready(2, b"T"))[1] is None
    assert session.server_message(ready(3, b"I"))[1] is Step.REGISTER_ENDPOINT


def test_a_renamed_tag_replaces_the_next_matching_command_complete() -> None:
    session = started_session()
    session.rename_next_tag(b"DO", b"CREATE EXTENSION")
    assert ord("C") in session.server_inspect
    raw, _ = session.server_message(server(pq.COMMAND_COMPLETE, b"DO\x00"))
    assert raw == pq.message(pq.COMMAND_COMPLETE, b"CREATE EXTENSION\x00")
    assert session.server_inspect == SERVER_INSPECT


def test_an_error_drops_the_pending_rename_and_gets_its_hint() -> None:
    session = started_session()
    session.rename_next_tag(b"DO", b"CREATE EXTENSION")
    session.add_error_hint(ErrorHint("42601", 8, "try this"))
    error = pq.error_response("42601", "syntax error")
    error = pq.message(pq.ERROR_RESPONSE, error[5:-1] + b"P8\x00\x00")
    raw, _ = session.server_message(pq.Message(pq.ERROR_RESPONSE, error))
    assert pq.parse_error_fields(raw[5:])["H"] == "try this"
    assert not session.tag_renames and not session.error_hints
    assert session.server_inspect == SERVER_INSPECT


def test_client_encoding_is_followed_from_parameter_status() -> None:
    session = started_session()
    session.server_message(server(pq.PARAMETER_STATUS, b"client_encoding\x00latin1\x00"))
    assert session.client_encoding == "LATIN1"


def test_channel_binding_mechanisms_are_removed_from_authentication_sasl() -> None:
    body = struct.pack("!I", 10) + b"SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"
    raw, _ = Session().server_message(server(pq.AUTHENTICATION, body))
    assert raw == pq.message(pq.AUTHENTICATION, struct.pack("!I", 10) + b"SCRAM-SHA-256\x00\x00")


def test_dbname_defaults_to_the_user() -> None:
    assert Session({"user": "alice"}).dbname == "alice"
