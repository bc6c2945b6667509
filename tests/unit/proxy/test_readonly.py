"""proxy/readonly.py without a server: the startup options, PostgreSQL's boolean spellings, and
what each statement becomes (the e2e tests run them: tests/e2e/test_session_read_only.py)."""

from __future__ import annotations

import pytest

from proxy import readonly
from proxy.readonly import LOCKED, OFF, ON, ReadOnlyState, plan, startup_parameters
from proxy.scann import parse_bool


@pytest.mark.parametrize(("options", "value", "left"), [
    ("-c alloydb_session_read_only=locked", LOCKED, "-c default_transaction_read_only=on"),
    ("-calloydb_session_read_only=On", ON, "-c default_transaction_read_only=on"),
    ("--alloydb-session-read-only=off", OFF, None),
    ("-c search_path=a\\ b -c alloydb_session_read_only=locked",
     LOCKED, "-c search_path=a\\ b -c default_transaction_read_only=on"),
    ("-c cloudsql_session_read_only=locked", None, "-c cloudsql_session_read_only=locked"),
])
def test_startup_options(options: str, value: str | None, left: str | None) -> None:
    params, got = startup_parameters({"user": "u", "options": options})
    assert got == value
    assert params.get("options") == left
    assert params["user"] == "u"


def test_plain_startup_parameter_wins_over_options() -> None:
    params, got = startup_parameters({"options": "-c alloydb_session_read_only=off",
                                      "alloydb_session_read_only": "locked"})
    assert got == LOCKED
    assert params == {"options": "-c default_transaction_read_only=on"}


def test_startup_without_the_parameter_is_untouched() -> None:
    params = {"user": "u", "options": "-c work_mem=64MB"}
    assert startup_parameters(params) == (params, None)


def test_invalid_startup_value() -> None:
    with pytest.raises(readonly.InvalidValue, match='"alloydb_session_read_only": "yes"'):
        startup_parameters({"options": "-c alloydb_session_read_only=yes"})


@pytest.mark.parametrize(("text", "meaning"), [
    ("off", False), ("OF", False), ("o", None), ("on", True), ("t", True), ("FALSE", False),
    ("n", False), ("yes", True), ("1", True), ("0", False), ("2", None), ("", None),
    (" off", None),
])
def test_parse_bool_as_postgresql(text: str, meaning: bool | None) -> None:
    assert parse_bool(text) is meaning


def test_sessions_that_do_not_use_it_are_not_touched() -> None:
    state = ReadOnlyState()
    for sql in ("SET default_transaction_read_only = off", "BEGIN READ WRITE", "RESET ALL",
                "DO $$ BEGIN END $$", "SELECT set_config('transaction_read_only', 'off', true)"):
        assert plan(sql, state).sql is None
    assert not state.in_use


def test_set_maps_onto_default_transaction_read_only() -> None:
    state = ReadOnlyState()
    assert plan("SET alloydb_session_read_only = 'on'", state).sql == (
        "SET default_transaction_read_only = on")
    assert state.current == ON and state.tracking
    state.command_complete(b"SET\x00")
    state.ready(b"I")
    assert state.value == ON and not state.tracking
    assert plan("RESET alloydb_session_read_only", state).sql == (
        "RESET default_transaction_read_only")
    assert plan("SET LOCAL alloydb_session_read_only TO 'on'", state).sql == (
        "SET LOCAL default_transaction_read_only = on")
    # locked is for the session, SET LOCAL or not
    assert plan("SET LOCAL alloydb_session_read_only = locked", state).sql == (
        "SET default_transaction_read_only = on")


def test_rolled_back_set_is_undone() -> None:
    state = ReadOnlyState()
    plan("SET alloydb_session_read_only = locked", state)
    state.ready(b"T")
    assert state.current == LOCKED
    state.command_complete(b"ROLLBACK\x00")
    state.ready(b"I")
    assert state.current == OFF


def test_invalid_value_and_locked_refusals() -> None:
    state = ReadOnlyState()
    sql = plan("SET alloydb_session_read_only = maybe", state).sql
    assert sql is not None and "'22023'" in sql and "Available values: off, on, locked." in sql
    assert not state.in_use
    state = ReadOnlyState(LOCKED)
    sql = plan("SET alloydb_session_read_only = off", state).sql
    assert sql is not None and "'55P02'" in sql
    # a refused statement among others: only it is replaced
    sql = plan("SELECT 1; BEGIN READ WRITE; SELECT 2", state).sql
    assert sql is not None and sql.startswith("SELECT 1; DO ") and sql.endswith("; SELECT 2")
    assert "'25006'" in sql


def test_text_that_does_not_parse_goes_on() -> None:
    assert plan("SET alloydb_session_read_only = = on", ReadOnlyState(LOCKED)).sql is None


def test_breach_only_when_read_only_settles() -> None:
    key = b"default_transaction_read_only"
    state = ReadOnlyState(LOCKED)
    assert readonly.breach(state, key, b"off") is not None
    assert readonly.breach(state, key, b"on") is None
    assert readonly.breach(state, b"TimeZone", b"off") is None
    # PostgreSQL reports the setting its ROLLBACK restored before the ReadyForQuery
    state = ReadOnlyState()
    plan("SET alloydb_session_read_only = locked", state)
    state.command_complete(b"ROLLBACK\x00")
    assert readonly.breach(state, key, b"off") is None
    # and a SET LOCAL's end at COMMIT
    state = ReadOnlyState()
    plan("SET LOCAL alloydb_session_read_only = on", state)
    state.command_complete(b"COMMIT\x00")
    assert readonly.breach(state, key, b"off") is None


def test_on_follows_the_server_off() -> None:
    """A prepared SET ... = off run again reaches the server without its text: an 'on' session
    follows PostgreSQL's report instead of ending."""
    state = ReadOnlyState(ON)
    assert readonly.breach(state, b"default_transaction_read_only", b"off") is None
    assert state.current == OFF


def test_read_only_startup_overrides_the_clients_setting() -> None:
    params, got = startup_parameters({
        "options": "-c default_transaction_read_only=off -c alloydb_session_read_only=locked",
        "default_transaction_read_only": "off"})
    assert got == LOCKED
    assert params == {"options": "-c default_transaction_read_only=off "
                                 "-c default_transaction_read_only=on"}


def test_a_rewrite_that_does_not_parse_again_is_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every rewrite is parsed again. One that does not parse (a bug of the proxy's) is not sent:
    # a session that is not read-only gets its text as it came; a read-only one a refusal,
    # never the original, which could be the way out of the lock.
    monkeypatch.setattr(readonly, "apply_splices", lambda sql, splices: "SELECT (")
    escape = "SET default_transaction_read_only = off"
    assert "cannot run this statement" in (plan(escape, ReadOnlyState(LOCKED)).sql or "")
    assert "cannot run this statement" in (plan(escape, ReadOnlyState(ON)).sql or "")
    assert plan("SHOW alloydb_session_read_only", ReadOnlyState(OFF)).sql is None
