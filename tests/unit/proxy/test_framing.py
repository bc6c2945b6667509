"""``proxy.protocol.MessageScanner``: whatever way the network cuts a stream, the bytes that come
out are the bytes that went in, inspected messages come out whole and in order, and a length
field that cannot be valid is refused.

Streams are built with the protocol's own message builder, as a client (simple and extended
query, COPY) and a server (row descriptions, big data rows, notices) would send them, then cut at
random points by hypothesis.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import protocol as pq
from tests.support.wire import (
    FLUSH,
    SYNC,
    TERMINATE,
    backend_key_data,
    bind,
    command_complete,
    copy_data,
    cstr,
    data_row,
    describe,
    execute,
    notice_response,
    parameter_status,
    parse,
    query,
    row_description,
)

CLIENT_INSPECT = frozenset(b"QP")
SERVER_INSPECT = frozenset(b"KSZ")


sql_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=200,
)
payload = st.binary(max_size=300)
big_payload = st.integers(min_value=1, max_value=200_000).map(lambda n: bytes([n % 251]) * n)

client_message = st.one_of(
    sql_text.map(query),
    st.tuples(st.sampled_from(["", "s1", "stmt_42"]), sql_text).map(lambda a: parse(*a)),
    st.lists(st.one_of(st.none(), payload), max_size=4).map(lambda p: bind("", "s1", p)),
    st.sampled_from([describe(b"S", "s1"), describe(b"P", ""), execute(""), execute("p", 10),
                     SYNC, FLUSH, TERMINATE, pq.message(b"c", b""),
                     pq.message(b"f", cstr("client gave up"))]),
    payload.map(copy_data),
    big_payload.map(copy_data),
    st.lists(payload, max_size=5).map(lambda p: pq.message(b"p", b"".join(p))),
)

server_message = st.one_of(
    st.tuples(st.sampled_from(["client_encoding", "TimeZone", "application_name"]),
              sql_text).map(lambda a: parameter_status(*a)),
    st.tuples(st.integers(0, 2**31), st.binary(min_size=4, max_size=256)).map(
        lambda a: backend_key_data(*a)),
    st.sampled_from([b"I", b"T", b"E"]).map(pq.ready_for_query),
    st.lists(st.text(max_size=10).map(lambda s: s.replace("\x00", "")), max_size=4).map(
        row_description),
    st.lists(st.one_of(st.none(), payload), max_size=5).map(data_row),
    big_payload.map(lambda p: data_row([p])),
    st.sampled_from(["SELECT 1", "INSERT 0 1", "COPY 3"]).map(command_complete),
    sql_text.map(notice_response),
    sql_text.map(lambda t: pq.error_response("42P01", t)),
    payload.map(copy_data),
)


@st.composite
def chunked(draw: st.DrawFn, messages: st.SearchStrategy[list[bytes]]) -> tuple[list[bytes],
                                                                                   list[bytes]]:
    """Messages and their concatenation cut at random offsets."""
    msgs = draw(messages)
    stream = b"".join(msgs)
    cuts = sorted(set(draw(st.lists(st.integers(0, max(len(stream), 0)), max_size=40))))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    return msgs, chunks


def run_scanner(scanner: pq.MessageScanner, chunks: list[bytes]) -> list[pq.Segment]:
    segments: list[pq.Segment] = []
    for chunk in chunks:
        segments.extend(scanner.feed(chunk))
    return segments


def joined(segments: list[pq.Segment]) -> bytes:
    return b"".join(s.raw if isinstance(s, pq.Message) else bytes(s) for s in segments)


def inspected(segments: list[pq.Segment]) -> list[bytes]:
    return [bytes(s.raw) for s in segments if isinstance(s, pq.Message)]


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- properties ------------------------------------------------------------------------------


@SETTINGS
@given(chunked(st.lists(client_message, max_size=12)))
def test_client_stream_comes_out_byte_for_byte_under_any_chunking(
        case: tuple[list[bytes], list[bytes]]) -> None:
    msgs, chunks = case
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    assert joined(run_scanner(scanner, chunks)) == b"".join(msgs)
    assert scanner.at_boundary


@SETTINGS
@given(chunked(st.lists(client_message, max_size=12)))
def test_client_queries_and_parses_come_out_whole_and_in_order(
        case: tuple[list[bytes], list[bytes]]) -> None:
    msgs, chunks = case
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    segments = run_scanner(scanner, chunks)
    assert inspected(segments) == [m for m in msgs if m[0] in CLIENT_INSPECT]
    for segment in segments:
        if isinstance(segment, pq.Message):
            assert segment.type == segment.raw[:1]


@SETTINGS
@given(chunked(st.lists(client_message, max_size=12)))
def test_every_message_type_is_reported_once_in_order(
        case: tuple[list[bytes], list[bytes]]) -> None:
    msgs, chunks = case
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    run_scanner(scanner, chunks)
    assert scanner.types_seen == [m[0] for m in msgs]


@SETTINGS
@given(chunked(st.lists(client_message, max_size=12)))
def test_counted_messages_are_counted_once_and_ordinals_follow_under_any_chunking(
        case: tuple[list[bytes], list[bytes]]) -> None:
    # The relay finds the ReadyForQuery that answers a statement by these counts: a message
    # whose whole header ended a chunk was once counted twice.
    msgs, chunks = case
    counted = frozenset(b"QS")
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, count=counted)
    segments = run_scanner(scanner, chunks)
    assert scanner.counted == sum(m[0] in counted for m in msgs)
    expected, seen = [], 0
    for m in msgs:
        seen += m[0] in counted
        if m[0] in CLIENT_INSPECT:
            expected.append(seen)
    assert [s.ordinal for s in segments if isinstance(s, pq.Message)] == expected


@SETTINGS
@given(chunked(st.lists(server_message, max_size=12)))
def test_server_stream_comes_out_byte_for_byte_with_its_inspected_messages_whole(
        case: tuple[list[bytes], list[bytes]]) -> None:
    msgs, chunks = case
    scanner = pq.MessageScanner(SERVER_INSPECT, record_types=True)
    segments = run_scanner(scanner, chunks)
    assert joined(segments) == b"".join(msgs)
    assert inspected(segments) == [m for m in msgs if m[0] in SERVER_INSPECT]
    assert scanner.at_boundary


@SETTINGS
@given(chunked(st.lists(client_message, max_size=8)), st.integers(5, 400))
def test_messages_larger_than_max_inspect_stream_through_uninspected(
        case: tuple[list[bytes], list[bytes]], max_inspect: int) -> None:
    msgs, chunks = case
    scanner = pq.MessageScanner(CLIENT_INSPECT, max_inspect=max_inspect,
                                valid_types=pq.CLIENT_MESSAGE_TYPES)
    segments = run_scanner(scanner, chunks)
    assert joined(segments) == b"".join(msgs)
    assert inspected(segments) == [
        m for m in msgs if m[0] in CLIENT_INSPECT and len(m) <= max_inspect
    ]


@SETTINGS
@given(chunked(st.lists(client_message, max_size=6)))
def test_pass_through_bytes_are_released_before_the_message_ends(
        case: tuple[list[bytes], list[bytes]]) -> None:
    """Nothing but inspected messages and a partial header is ever held back."""
    msgs, chunks = case
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    starts = []
    offset = 0
    for m in msgs:
        starts.append((offset, m))
        offset += len(m)
    fed = out = 0
    for chunk in chunks:
        out += len(joined(scanner.feed(chunk)))
        fed += len(chunk)
        # the message in progress at ``fed``
        current = next(((s, m) for s, m in starts if s <= fed < s + len(m)), None)
        if current is None:  # at a message boundary
            assert out == fed
            continue
        start, m = current
        if m[0] in CLIENT_INSPECT or fed - start < 5:
            assert out == start
        else:
            assert out == fed


@pytest.mark.parametrize("length", [0, 1, 2, 3, pq.MAX_MESSAGE_LENGTH + 1, 0xFFFF_FFFF])
@pytest.mark.parametrize("mtype", [b"Q", b"B", b"d"])
@SETTINGS
@given(prefix=chunked(st.lists(client_message, max_size=4)), cut=st.integers(0, 5))
def test_invalid_length_raises_protocol_violation_wherever_the_stream_is_cut(
        mtype: bytes, length: int, prefix: tuple[list[bytes], list[bytes]], cut: int) -> None:
    _msgs, chunks = prefix
    bad = mtype + struct.pack("!I", length) + b"tail"
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    stream_chunks = [*chunks, bad[:cut], bad[cut:]]
    with pytest.raises(pq.ProtocolViolation):
        run_scanner(scanner, stream_chunks)


@SETTINGS
@given(prefix=chunked(st.lists(client_message, max_size=4)),
       mtype=st.integers(0, 255).filter(lambda t: t not in pq.CLIENT_MESSAGE_TYPES),
       cut=st.integers(0, 5))
def test_unknown_client_message_type_raises_protocol_violation(
        prefix: tuple[list[bytes], list[bytes]], mtype: int, cut: int) -> None:
    _msgs, chunks = prefix
    bad = bytes([mtype]) + struct.pack("!I", 4)
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    with pytest.raises(pq.ProtocolViolation):
        run_scanner(scanner, [*chunks, bad[:cut], bad[cut:]])


@SETTINGS
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=20))
def test_random_bytes_either_violate_or_come_out_as_a_prefix_of_the_input(
        data: bytes, cuts: list[int]) -> None:
    bounds = [0, *sorted(c for c in set(cuts) if c <= len(data)), len(data)]
    scanner = pq.MessageScanner(CLIENT_INSPECT)
    out = b""
    try:
        for a, b in itertools.pairwise(bounds):
            out += joined(scanner.feed(data[a:b]))
    except pq.ProtocolViolation:
        return
    assert data.startswith(out)
    if scanner.at_boundary:
        assert out == data


def test_a_ten_megabyte_data_row_is_never_buffered_whole() -> None:
    row = data_row([b"x" * (10 * 1024 * 1024)])
    scanner = pq.MessageScanner(SERVER_INSPECT, record_types=True)
    released = 0
    for offset in range(0, len(row), 65536):
        chunk = row[offset : offset + 65536]
        out = joined(scanner.feed(chunk))
        if offset:
            assert len(out) == len(chunk)  # streamed as it arrives
        released += len(out)
    assert released == len(row)
    assert scanner.types_seen == [ord("D")]


def test_a_header_split_byte_by_byte_is_reassembled() -> None:
    msgs = [query("SELECT 1"), SYNC, parse("s", "SELECT $1", (23,)), FLUSH]
    stream = b"".join(msgs)
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES, record_types=True)
    segments = run_scanner(scanner, [stream[i : i + 1] for i in range(len(stream))])
    assert joined(segments) == stream
    assert inspected(segments) == [msgs[0], msgs[2]]


def test_set_inspect_between_messages_takes_effect_for_the_next_message() -> None:
    scanner = pq.MessageScanner(frozenset())
    first = scanner.feed(query("SELECT 1"))
    scanner.set_inspect(CLIENT_INSPECT)
    second = scanner.feed(query("SELECT 2"))
    assert inspected(first) == [] and inspected(second) == [query("SELECT 2")]


def test_bytearray_input_gives_the_same_bytes() -> None:
    stream = query("SELECT 1") + data_row([b"abc"]) + SYNC
    for kind in (bytes, bytearray):
        scanner = pq.MessageScanner(CLIENT_INSPECT)
        assert joined(scanner.feed(kind(stream))) == stream  # type: ignore[arg-type]


# -- the relay's prefilter inside the scanner (``wanted``) -----------------------------------


def is_whole_message(data: bytes, start: int, end: int) -> bool:
    return end - start >= 5 and struct.unpack_from("!I", data, start + 1)[0] == end - start - 1


@SETTINGS
@given(chunked(st.lists(client_message, max_size=12)), st.binary(min_size=1, max_size=2))
def test_wanted_sees_each_inspected_message_whole_and_unwanted_ones_pass_as_bytes(
        case: tuple[list[bytes], list[bytes]], needle: bytes) -> None:
    msgs, chunks = case
    asked: list[bytes] = []

    def wanted(data: bytes, start: int, end: int) -> bool:
        assert is_whole_message(data, start, end)
        asked.append(bytes(data[start:end]))
        return needle in data[start + 5 : end]

    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES,
                                wanted=wanted)
    segments = run_scanner(scanner, chunks)
    assert joined(segments) == b"".join(msgs)
    assert asked == [m for m in msgs if m[0] in CLIENT_INSPECT]
    assert inspected(segments) == [m for m in asked if needle in m[5:]]
    assert scanner.at_boundary


@SETTINGS
@given(chunked(st.lists(st.one_of(
    client_message,
    st.sampled_from(["SELECT google_ml.embedding('m', 'x')",
                     "SELECT * FROM pg_settings WHERE name LIKE 'google_ml_integration.%'",
                     "CREATE EXTENSION google_ml_integration"]).map(query)), max_size=10)))
def test_the_relay_prefilter_picks_exactly_the_statements_worth_parsing(
        case: tuple[list[bytes], list[bytes]]) -> None:
    from proxy.statements import worth_parsing

    msgs, chunks = case
    scanner = pq.MessageScanner(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES,
                                wanted=worth_parsing)
    segments = run_scanner(scanner, chunks)
    assert joined(segments) == b"".join(msgs)
    assert inspected(segments) == [m for m in msgs
                                   if m[0] in CLIENT_INSPECT and worth_parsing(m)]


# -- the fast path (``scan``) against the full walk ------------------------------------------
# Without ``record_types`` the scanner steps over most messages in ``scan``'s short loop; with
# it, every message takes the full walk. Both must give the same segments, the same counts
# (which ReadyForQuery answers which statement) and the same boundaries (where the proxy may
# place a message of its own) after every chunk, however the stream is cut.


def fast_and_full(inspect: frozenset[int], **kwargs: object) -> tuple[pq.MessageScanner,
                                                                      pq.MessageScanner]:
    return (pq.MessageScanner(inspect, **kwargs),  # type: ignore[arg-type]
            pq.MessageScanner(inspect, record_types=True, **kwargs))  # type: ignore[arg-type]


def assert_same_after_every_chunk(fast: pq.MessageScanner, full: pq.MessageScanner,
                                  chunks: list[bytes]) -> list[pq.Segment]:
    out: list[pq.Segment] = []
    for chunk in chunks:
        scanned = fast.scan(chunk)
        expected = full.feed(chunk)
        if scanned is None:  # None: the chunk goes on exactly as it came
            assert expected == ([chunk] if chunk else [])
            scanned = [chunk] if chunk else []
        assert joined(scanned) == joined(expected)
        assert [(m.type, bytes(m.raw), m.ordinal, m.index)
                for m in scanned if isinstance(m, pq.Message)] \
            == [(m.type, bytes(m.raw), m.ordinal, m.index)
                for m in expected if isinstance(m, pq.Message)]
        assert (fast.counted, fast.within, fast.following) == (
            full.counted, full.within, full.following)
        assert fast.at_boundary == full.at_boundary
        out.extend(scanned)
    return out


@SETTINGS
@given(chunked(st.lists(server_message, max_size=12)),
       st.sampled_from([frozenset(), frozenset(b"KS"), frozenset(b"KSZ"), frozenset(b"KSCE")]))
def test_server_fast_path_forwards_and_counts_ready_for_query_as_the_full_walk(
        case: tuple[list[bytes], list[bytes]], inspect: frozenset[int]) -> None:
    msgs, chunks = case
    fast, full = fast_and_full(inspect, count=frozenset(b"Z"))
    segments = assert_same_after_every_chunk(fast, full, chunks)
    assert joined(segments) == b"".join(msgs)
    assert fast.counted == sum(m[0] == ord("Z") for m in msgs)
    assert fast.at_boundary


@SETTINGS
@given(chunked(st.lists(client_message, max_size=12)),
       st.one_of(st.none(), st.just(b"google_ml"), st.binary(min_size=1, max_size=2)))
def test_client_fast_path_forwards_inspects_and_counts_as_the_full_walk(
        case: tuple[list[bytes], list[bytes]], needle: bytes | None) -> None:
    from proxy.statements import worth_parsing

    def wanted(data: bytes, start: int, end: int) -> bool:
        return needle in data[start + 5 : end] if needle else worth_parsing(data, start, end)

    msgs, chunks = case
    fast, full = fast_and_full(CLIENT_INSPECT, valid_types=pq.CLIENT_MESSAGE_TYPES,
                               wanted=wanted, count=frozenset(b"QS"))
    segments = assert_same_after_every_chunk(fast, full, chunks)
    assert joined(segments) == b"".join(msgs)
    assert fast.counted == sum(m[0] in b"QS" for m in msgs)


def numbered(msgs: list[bytes], count: bytes, within: bytes, copy_starts: bytes = b"",
             copy_ends: bytes = b"") -> list[tuple[int, int]]:
    """Each message's (ordinal, index), as ``MessageScanner`` numbers them."""
    out, counted, numbered_within, mark = [], 0, 0, (0, 0)
    for m in msgs:
        index = numbered_within
        if m[0] in count:
            counted, numbered_within = counted + 1, 0
        elif m[0] in within:
            numbered_within += 1
        if m[0] in copy_starts:
            mark = (counted, numbered_within)
        elif m[0] in copy_ends:
            counted, numbered_within = mark
        out.append((counted, index))
    return out


@SETTINGS
@given(chunked(st.lists(st.one_of(server_message, st.sampled_from([
    pq.error_response("42601", "syntax error"), pq.message(b"I", b""), pq.message(b"s", b"")])),
    max_size=12)))
def test_results_are_numbered_between_two_ready_for_query_however_the_stream_is_cut(
        case: tuple[list[bytes], list[bytes]]) -> None:
    msgs, chunks = case
    results = frozenset(b"CIsE")
    fast, full = fast_and_full(results, count=frozenset(b"Z"), within=results)
    segments = assert_same_after_every_chunk(fast, full, chunks)
    expected = [n for m, n in zip(msgs, numbered(msgs, b"Z", b"CIsE"), strict=True)
                if m[0] in results]
    assert [(m.ordinal, m.index) for m in segments if isinstance(m, pq.Message)] == expected


@SETTINGS
@given(chunked(st.lists(st.one_of(client_message, st.sampled_from([
    parse("s1", "SHOW google_ml_integration.enable_model_support"), bind("p", "s1", []),
    execute("p"), pq.message(b"C", b"Ss1\x00"), pq.message(b"C", b"Pp\x00")])), max_size=14)),
    st.booleans())
def test_from_a_picked_parse_on_parse_bind_execute_and_close_are_framed_whole(
        case: tuple[list[bytes], list[bytes]], unfollow_first: bool) -> None:
    """The session sees each Bind and Execute of a statement it renamed the tag of, in the
    chunk of its Parse already; Executes are numbered between two Syncs."""
    from proxy.statements import worth_parsing

    msgs, chunks = case
    followed = frozenset(b"PBEC")
    kwargs: dict[str, object] = {"valid_types": pq.CLIENT_MESSAGE_TYPES, "wanted": worth_parsing,
                                 "count": frozenset(b"QS"), "within": frozenset(b"E"),
                                 "follow": followed, "copy_starts": frozenset(b"QE"),
                                 "copy_ends": frozenset(b"cf")}
    fast, full = fast_and_full(CLIENT_INSPECT, **kwargs)
    segments = assert_same_after_every_chunk(fast, full, chunks)
    assert joined(segments) == b"".join(msgs)
    expected, following = [], False
    for m, (ordinal, index) in zip(msgs, numbered(msgs, b"QS", b"E", b"QE", b"cf"), strict=True):
        if following and m[0] in followed or m[0] in CLIENT_INSPECT and worth_parsing(m):
            expected.append((m, ordinal, index))
            following = following or m[0] == ord("P")
    assert [(bytes(m.raw), m.ordinal, m.index) for m in segments
            if isinstance(m, pq.Message)] == expected
    if unfollow_first:  # back to the prefilter alone
        fast.unfollow()
        assert not fast.following
        assert fast.scan(bind("p", "s1", []) + execute("p")) is None


@SETTINGS
@given(chunked(st.lists(server_message, min_size=1, max_size=8)), st.data())
def test_set_inspect_mid_stream_takes_effect_on_the_fast_path_as_on_the_full_walk(
        case: tuple[list[bytes], list[bytes]], data: st.DataObject) -> None:
    _, chunks = case
    fast, full = fast_and_full(frozenset(b"KS"), count=frozenset(b"Z"))
    for chunk in chunks:
        inspect = data.draw(st.sampled_from([frozenset(b"KS"), frozenset(b"KSZ"),
                                             frozenset(b"KSCE")]))
        fast.set_inspect(inspect)
        full.set_inspect(inspect)
        assert_same_after_every_chunk(fast, full, [chunk])


@pytest.mark.parametrize("length", [0, 3, pq.MAX_MESSAGE_LENGTH + 1, 0xFFFF_FFFF])
@pytest.mark.parametrize("cut", range(8))
def test_a_bad_length_after_good_messages_is_refused_on_the_fast_path(cut: int,
                                                                       length: int) -> None:
    bad = b"D" + struct.pack("!I", length) + b"xx"
    stream = pq.ready_for_query() + command_complete("SELECT 1") + bad
    scanner = pq.MessageScanner(frozenset(), count=frozenset(b"Z"))
    with pytest.raises(pq.ProtocolViolation):
        scanner.scan(stream[:len(stream) - 7 + cut])
        scanner.scan(stream[len(stream) - 7 + cut:])


@pytest.mark.parametrize(("inspect", "count", "message"), [
    (frozenset(b"KSZ"), frozenset(b"Z"), pq.ready_for_query()),  # server, while Z is inspected
    (CLIENT_INSPECT, frozenset(b"QS"), query("SELECT 1")),  # client
])
def test_a_counted_message_cut_right_after_its_header_is_counted_once(
        inspect: frozenset[int], count: frozenset[int], message: bytes) -> None:
    # The ordinal says which ReadyForQuery answers which statement: counted twice, the endpoint
    # registration after CREATE EXTENSION would wait for one ReadyForQuery too many.
    scanner = pq.MessageScanner(inspect, count=count)
    segments = scanner.feed(message[:5]) + scanner.feed(message[5:])
    assert scanner.counted == 1
    assert [(s.raw, s.ordinal) for s in segments if isinstance(s, pq.Message)] == [(message, 1)]


def test_a_followed_message_too_long_to_frame_is_streamed_and_counted() -> None:
    from proxy.statements import worth_parsing

    scanner = pq.MessageScanner(CLIENT_INSPECT, max_inspect=64, wanted=worth_parsing,
                                follow=frozenset(b"PBEC"))
    picked = parse("s", "SHOW google_ml_integration.enable_model_support")
    assert inspected(scanner.feed(picked)) == [picked] and scanner.following
    long_bind = bind("", "s", [b"x" * 100])
    stream = long_bind + execute("")
    segments = scanner.scan(stream[:50])  # the Bind's start: streamed, the caller told
    assert segments is not None and joined(segments) == stream[:50]
    assert scanner.unfollowed == 1
    segments = scanner.scan(stream[50:])
    assert segments is not None and inspected(segments) == [execute("")]
    assert scanner.unfollowed == 1
