"""The lenient paths under hostile input, against ``posgate serve`` over a real socket.

Real CUP traffic is looser than the reference: F pad nibbles, hex digits in the header's
sub-version, stray bytes after a frame in the same TCP read (tests/data/real-messages,
docs/field-dialects.md). Each whole frame is answered before the stray bytes are dealt with
(the connection is then closed); hostile input still closes cleanly and the next client is
served."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posgate.dialect.cup import CODEC
from posgate.fleet.hostproc import HostProcess
from posgate.framing import DEFAULT_MAX_FRAME, FrameReader, encode_frame

from .wire import TPDU, echo_body, exchange, frame, sign_on_body

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])  # fmt: skip
CORPUS = json.loads((Path(__file__).parents[1] / "data" / "real-messages" / "corpus.json").read_text("utf-8"))
REQUESTS = [m for m in CORPUS["messages"] if m["direction"] == "request" and m.get("answer") != "30"]
REUSED_BITMAP = [m for m in CORPUS["messages"] if m.get("answer") == "30"]


def _served(host: HostProcess) -> None:
    out = exchange(host.port, frame(echo_body(4321)))
    assert out.reply is not None and out.reply.text(11) == "004322", f"the next client was not served: {out!r}"


def test_every_real_request_is_answered_by_the_real_host(host: HostProcess) -> None:
    for m in REQUESTS:
        wire = bytes.fromhex(m["hex"])
        sent = FrameReader().feed(wire)[0]
        out = exchange(host.port, wire)
        assert out.reply is not None, f"{m['name']}: {out!r}\n{host.log_tail(lines=10)}"
        got = out.frames[0]
        assert got.tpdu == sent.tpdu[:1] + sent.tpdu[3:5] + sent.tpdu[1:3]  # D1: addresses swapped
        assert got.header[:2] + got.header[3:] == sent.header[:2] + sent.header[3:]  # echoed as received
        assert out.reply.text(11) == CODEC.decode(sent.body).text(11) and out.reply.text(39)
    _served(host)


def test_a_real_reused_bitmap_is_answered_30_and_the_log_says_so(host: HostProcess) -> None:
    # Regression (issue 10): Easy8583's second message flags six absent fields; the host closed
    # the connection without a reply.
    assert REUSED_BITMAP
    for m in REUSED_BITMAP:
        out = exchange(host.port, bytes.fromhex(m["hex"]), want=1)
        assert out.reply is not None and not out.closed, f"{m['name']}: {out!r}\n{host.log_tail(lines=10)}"
        r = out.reply
        assert (r.mti, r.text(11), r.text(41), r.text(42), r.text(39)) == ("0210", "000001", "73782214", "898100012340001", "30")
    absent = ", ".join(map(str, REUSED_BITMAP[-1]["absent"]))
    tail = host.log_tail(lines=40)
    line = next((x for x in tail.splitlines() if f"bitmap flags absent fields {absent}" in x), None)
    # The reply was sent: the transaction line with its code, not "no reply sent".
    assert line is not None and '"rc": "30"' in line and "no reply sent" not in line, tail
    _served(host)


def test_a_reused_bitmap_between_good_frames_in_one_read_is_answered_in_order(host: HostProcess) -> None:
    wire = frame(echo_body(5100)) + bytes.fromhex(REUSED_BITMAP[-1]["hex"]) + frame(echo_body(5200))
    out = exchange(host.port, wire, want=3)
    got = [CODEC.decode(f.body) for f in out.frames]
    assert [(r.text(11), r.text(39)) for r in got] == [("005101", "00"), ("000001", "30"), ("005201", "00")], out
    assert not out.closed
    _served(host)


def test_a_hex_sub_version_header_signs_on_and_is_echoed(host: HostProcess) -> None:
    header = bytes.fromhex("60310031110E")
    out = exchange(host.port, frame(sign_on_body(7001), header=header))
    assert out.reply is not None and out.reply.text(39) == "00"
    reply_header = out.frames[0].header
    assert reply_header[:2] + reply_header[3:] == header[:2] + header[3:] and reply_header[2] >> 4 == 0


def _pad(body: bytes, nibble: int) -> bytes:
    # echo_body ends with field 60 (11 digits, left-justified): its last nibble is the pad.
    return body[:-1] + bytes([(body[-1] & 0xF0) | nibble])


bad_lengths = st.one_of(st.integers(0, 20), st.integers(DEFAULT_MAX_FRAME + 1, 0xFFFF))


@FUZZ
@given(
    pads=st.lists(st.sampled_from([0x0, 0xF]), min_size=1, max_size=4),
    length=bad_lengths,
    tail=st.binary(max_size=64),
)
def test_frames_with_pad_nibbles_then_stray_bytes_are_answered_then_closed(
    host: HostProcess, pads: list[int], length: int, tail: bytes
) -> None:
    frames = [encode_frame(TPDU, bytes.fromhex("603100000000"), _pad(echo_body(8000 + i), p)) for i, p in enumerate(pads)]
    out = exchange(host.port, b"".join(frames) + length.to_bytes(2, "big") + tail, want=len(frames), linger=5)
    assert not out.timed_out, out
    assert len(out.frames) == len(frames), f"{out!r}\n{host.log_tail(lines=10)}"
    assert [CODEC.decode(f.body).text(11) for f in out.frames] == [f"{8001 + i:06d}" for i in range(len(frames))]
    assert out.closed, "the stream lost sync after the stray bytes: the host must hang up"
    assert host.alive


@FUZZ
@given(junk=st.binary(min_size=1, max_size=40))
def test_a_real_frame_followed_by_any_junk_is_answered(host: HostProcess, junk: bytes) -> None:
    wire = frame(_pad(echo_body(9100), 0xF)) + junk
    out = exchange(host.port, wire, want=1, timeout=15)
    # The frame is answered, whatever follows (junk that reads as a frame start may get its own
    # answer, or be cut off by the frame timeout).
    assert out.frames and CODEC.decode(out.frames[0].body).text(11) == "009101", out
    assert host.alive


def test_the_next_client_is_served_after_the_lenient_paths(host: HostProcess) -> None:
    _served(host)
