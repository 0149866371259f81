"""Card data in the terminal journal is sealed under the journal key (docs/decisions.md S1): the
file (and its WAL) never holds a PAN, its expiry, field 55 or a request in clear; a journal
written in clear by an older posgate is sealed when opened; a sealed journal without its key
is refused."""

from __future__ import annotations

import json
import os
import random
import stat
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from posgate.dialect.cup import CODEC
from posgate.terminal.cards import read_card
from posgate.terminal.client import Endpoint, TerminalSession, run_operation
from posgate.terminal.journal import Journal, JournalKeyError, journal_path, key_path
from posgate.terminal.machine import Input

from .hostd import HostThread

CHIP = "6225880000000000010"
OK = "6212142000000000012"


def _clear_forms(pan: str) -> list[bytes]:
    return [pan.encode(), bytes.fromhex(pan[: len(pan) - len(pan) % 2]), bytes.fromhex(pan[1 : len(pan) - (len(pan) - 1) % 2])]


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and ".key" not in p.name}


def _leaks(d: Path) -> list[str]:
    return [f"{name}: {pan}" for name, data in _files(d).items() for pan in (CHIP, OK) if any(f in data for f in _clear_forms(pan))]


@pytest.fixture
def host() -> Iterator[HostThread]:
    with HostThread() as h:
        yield h


def _day(host: HostThread, d: Path) -> Journal:
    """A chip sale, a keyed sale, an offline sale (its advice queued with its request) and a
    sale left in doubt (its reversal record on disk)."""
    j = Journal.open(d)
    s = TerminalSession.from_journal(j, Endpoint(port=host.port, timeout=5))
    rnd = random.Random(3)
    assert run_operation(s, Input("sign_on")).approved
    chip = read_card(CHIP, "insert", pin="123456", amount=900, when=datetime.now(UTC), randbytes=rnd.randbytes)
    assert run_operation(s, Input("sale", amount=900, card=chip)).approved
    assert run_operation(s, Input("sale", amount=500, card=read_card(OK, "manual", pin="123456"))).approved
    run_operation(s, Input("offline", amount=300, card=read_card(OK, "manual"), auth_code="123456", kind="settlement"))
    s.endpoint = Endpoint(port=host.port, timeout=0.3)
    host.mute = True
    assert run_operation(s, Input("sale", amount=700, card=read_card(OK, "swipe", pin="123456"))).error == "timeout"
    host.mute = False
    return j


def test_the_journal_keeps_no_card_data_in_clear(host: HostThread, tmp_path: Path) -> None:
    j = _day(host, tmp_path)
    state = j.load()
    assert state.reversal is not None and state.reversal.message.text(2) in ("", OK)
    pans = {t.pan for t in state.txns}
    assert {CHIP, OK} <= pans  # the core gets its card numbers back (void, refund, batch upload)
    assert all(t.icc for t in state.txns if t.pan == CHIP)
    assert {t.pan for t, _ in j.transactions()} == pans and j.find(state.txns[0].stan) == state.txns[0]
    assert not _leaks(tmp_path), _leaks(tmp_path)  # the file and its WAL, the journal still open
    row = json.loads(j.conn.execute("SELECT data FROM txns LIMIT 1").fetchone()[0])
    assert row["pan_masked"].startswith("622588") and "*" in row["pan_masked"] and "pan" not in row
    assert stat.S_IMODE(key_path(tmp_path, "10000001").stat().st_mode) == 0o600
    j.close()


def _write_as_schema_1(d: Path) -> None:
    """Rewrite a journal the way posgate wrote it before S1: card data in clear, no key file."""
    j = Journal.open(d)
    state = j.load()
    with j._tx() as c:
        for t in [t for t, _ in j.transactions(include_settled=True)]:
            data = asdict(t)
            data["icc"], data["request"] = t.icc.hex(), t.request.hex()
            c.execute("UPDATE txns SET data = ? WHERE batch = ? AND stan = ?", (json.dumps(data, sort_keys=True), t.batch, t.stan))
        assert state.reversal is not None
        c.execute("UPDATE reversal SET body = ? WHERE id = 1", (CODEC.encode(state.reversal.message),))
        j._set_meta("schema", "1")
    j.close()
    os.unlink(key_path(d, "10000001"))


def test_a_clear_journal_is_sealed_when_opened(host: HostThread, tmp_path: Path) -> None:
    _day(host, tmp_path).close()
    before = Journal.open(tmp_path)
    expected = before.load()
    before.close()
    _write_as_schema_1(tmp_path)
    assert _leaks(tmp_path)  # what an older posgate left
    j = Journal.open(tmp_path)
    assert j.load() == expected  # nothing lost: card numbers, field 55, requests, the reversal
    assert j._meta("schema") == "2"
    assert not _leaks(tmp_path), _leaks(tmp_path)  # not in the file's free pages, not in the WAL
    j.close()


def test_a_sealed_journal_without_its_key_is_refused(host: HostThread, tmp_path: Path) -> None:
    _day(host, tmp_path).close()
    key = key_path(tmp_path, "10000001")
    saved = key.read_bytes()
    key.unlink()
    size = journal_path(tmp_path, "10000001").stat().st_size
    with pytest.raises(JournalKeyError, match="journal key file .* is missing"):
        Journal.open(tmp_path)
    assert not key.exists() and journal_path(tmp_path, "10000001").stat().st_size == size
    key.write_bytes(bytes(32))  # another key
    with pytest.raises(JournalKeyError, match="cannot be decrypted"):
        Journal.open(tmp_path).load()
    key.write_bytes(saved)
    with Journal.open(tmp_path) as j:
        assert {t.pan for t in j.load().txns} >= {CHIP, OK}
