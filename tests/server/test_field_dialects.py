"""The server's read loop, liberal in what it reads: whole frames followed by stray bytes are
answered before the connection is closed; a request the pipeline cannot answer is logged as
unanswered, never with a response code that was not sent."""

from __future__ import annotations

import logging

from serverkit import BODY, HEADER, TPDU, closed_by_peer, connect, read_frame, roundtrip

from posgate.framing import encode_frame
from posgate.host.server import EchoReply


async def test_whole_frames_before_stray_bytes_are_answered_then_the_connection_closes(make_host, caplog):
    # Regression: the frames already parsed in the same read were thrown away when the next
    # length prefix was bad; the terminal got no reply for a complete request.
    host = await make_host()
    try:
        r, w = await connect(host)
        first, second = encode_frame(TPDU, HEADER, BODY + b"1"), encode_frame(TPDU, HEADER, BODY + b"2")
        with caplog.at_level(logging.WARNING, logger="posgate.host"):
            w.write(first + second + b"\x00\x05stray")  # one write: two frames, then junk
            await w.drain()
            assert (await read_frame(r))[2] == BODY + b"1"
            assert (await read_frame(r))[2] == BODY + b"2"
            assert await closed_by_peer(r)
        said = [rec.getMessage() for rec in caplog.records if rec.name == "posgate.host"]
        assert any("after answering the whole frames" in s and "stray bytes after 2 whole frames" in s for s in said), said
        # the next terminal is served
        r2, w2 = await connect(host)
        assert (await roundtrip(r2, w2))[2] == BODY
    finally:
        await host.shutdown()


async def test_stray_bytes_alone_still_close_at_once(make_host):
    host = await make_host()
    try:
        r, w = await connect(host)
        w.write(b"\x00\x05stray")
        await w.drain()
        assert await closed_by_peer(r)
    finally:
        await host.shutdown()


def _closing_processor(frame_header: bytes, body: bytes, store, issuer, env) -> EchoReply:
    """What the pipeline returns for a request it cannot address: no body, close, code 30."""
    return EchoReply(frame_header, None, close=True, operation=None, response_code="30",
                     trace=[["Decode", "ABORTED", "30 field 42: 15 ASCII characters; 11, 41, 42 unreadable, closing"]])  # fmt: skip


async def test_a_request_closed_without_a_reply_is_never_logged_with_a_response_code(make_host, caplog):
    # Regression: the log said "rc 30" for a connection closed without any reply.
    host = await make_host(processor=_closing_processor)
    try:
        r, w = await connect(host)
        with caplog.at_level(logging.INFO, logger="posgate.host"):
            w.write(encode_frame(TPDU, HEADER, BODY))
            await w.drain()
            assert await closed_by_peer(r)
            await host.shutdown()
        records = [rec for rec in caplog.records if rec.name == "posgate.host"]
        assert not [rec for rec in records if getattr(rec, "fields", {}).get("rc") == "30"]
        unanswered = [rec for rec in records if rec.getMessage().startswith("no reply sent, connection closed")]
        assert len(unanswered) == 1
        assert "field 42: 15 ASCII characters" in unanswered[0].getMessage()
    finally:
        await host.shutdown()


def _declining_processor(frame_header: bytes, body: bytes, store, issuer, env) -> EchoReply:
    return EchoReply(frame_header, body, operation="sale", response_code="30",
                     trace=[["Decode", "ABORTED", "30 field 35: a 0 or F pad nibble"], ["BuildReply", "PREPARED", "30"]])  # fmt: skip


async def test_a_decline_is_logged_with_the_field_and_the_reason(make_host, caplog):
    host = await make_host(processor=_declining_processor)
    try:
        r, w = await connect(host)
        with caplog.at_level(logging.INFO, logger="posgate.host"):
            assert (await roundtrip(r, w))[2] == BODY
            await host.shutdown()
        lines = [getattr(rec, "fields", {}) for rec in caplog.records if getattr(rec, "fields", {}).get("rc") == "30"]
        assert lines and lines[0]["reason"] == "field 35: a 0 or F pad nibble"
    finally:
        await host.shutdown()
