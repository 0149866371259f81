"""The journal: durability, diff-saving, what must never be written, operators."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from posgate.terminal import machine
from posgate.terminal.journal import Journal, OperatorError
from posgate.terminal.machine import Input
from posgate.terminal.state import TerminalConfig

from .scripted import NOW, PAN, TMK, TRACK2, Host, run, swipe


def test_round_trip_and_settled_history(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    assert j.created and j.path.name == "terminal-10000001.sqlite"
    host = Host()
    state = j.load()
    state, r, _ = run(state, Input("sign_on"), host)
    state = j.save(state)
    state, sale, _ = run(state, Input("sale", amount=4321, card=swipe(), signature=b"JBIG"), host,
                         script=lambda s, h: "timeout" if s.purpose == "signature" else None)  # fmt: skip
    state = j.save(state)
    j.close()

    j2 = Journal.open(tmp_path)
    assert not j2.created
    loaded = j2.load()
    assert loaded.keys is not None and state.keys is not None and loaded.keys.mak == state.keys.mak
    assert (
        loaded.stan == state.stan
        and loaded.batch == state.batch
        and loaded.signed_on_date == state.signed_on_date
    )
    assert loaded.txns == state.txns and loaded.signatures == {sale.stan: b"JBIG"}
    assert [e.kind for e in j2.events()] == ["sign_on"]
    # Settlement empties the batch log; the journal keeps the rows, marked settled.
    loaded, result, _ = run(
        loaded,
        Input("settlement"),
        host,
        script=lambda s, h: "timeout" if s.purpose == "signature" else None,
        save=j2.save,
    )
    assert j2.transactions() == []
    rows = j2.transactions(include_settled=True)
    assert [(t.stan, settled) for t, settled in rows] == [(sale.stan, True)]
    assert rows[0][0].signature == "unsigned"  # never uploaded before the batch closed
    assert j2.find(sale.stan) is not None
    j2.close()
    assert Journal.open(tmp_path).load().last_settlement["settled_batch"] == "000001"


def test_events_are_written_once_whether_or_not_the_caller_drains(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    host = Host()
    state, _, _ = run(j.load(), Input("sign_on"), host)
    j.save(state)
    j.save(state)  # the caller kept the undrained state
    state, _, _ = run(state, Input("sign_on"), host)
    drained = j.save(state)
    assert drained.events == ()
    state2, _, _ = run(drained, Input("sign_on"), host)
    j.save(state2)
    assert len(j.events("sign_on")) == 3


def test_no_track_pin_or_pin_block_on_disk(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    host = Host()
    state, _, _ = run(j.load(), Input("sign_on"), host)
    state = j.save(state)
    state, out = machine.start(state, Input("sale", amount=100, card=swipe()), NOW)
    state = j.save(state)  # the reversal record, before sending
    pin_block = out.message.data(52)  # type: ignore[union-attr]
    assert pin_block is not None
    state, _ = machine.on_timeout(state, NOW)
    state = j.save(state)
    state, _, _ = run(state, Input("sale", amount=100, card=swipe()), host)
    j.save(state)
    j.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert TRACK2.encode() not in raw and TRACK2.replace("=", "D").encode() not in raw
    assert bytes.fromhex(TRACK2.replace("=", "D") + "0") not in raw  # BCD form of the track
    assert pin_block not in raw
    assert TMK.hex().upper().encode() in raw  # the TMK is stored (device key material)...


def test_tmk_is_never_printed() -> None:
    c = TerminalConfig()
    assert TMK.hex().upper() not in repr(c) and TMK.hex() not in repr(c)


def test_operator_lockout_and_roles(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    j.seed_demo_operators()
    assert [o.code for o in j.operators()] == ["00", "01", "02", "99"]
    assert j.verify_operator("00", "123456", NOW, role="supervisor").role == "supervisor"
    with pytest.raises(OperatorError, match="not a supervisor"):
        j.verify_operator("01", "0000", NOW, role="supervisor")
    for tries_left in (2, 1):
        with pytest.raises(OperatorError, match=f"{tries_left} tries left"):
            j.verify_operator("01", "1111", NOW)
    with pytest.raises(OperatorError, match="locked"):
        j.verify_operator("01", "1111", NOW)
    with pytest.raises(OperatorError, match="locked"):
        j.verify_operator("01", "0000", NOW + timedelta(minutes=9))
    assert j.verify_operator("01", "0000", NOW + timedelta(minutes=11)).code == "01"
    j.put("lockout_minutes", "1")
    for _ in range(3):
        with pytest.raises(OperatorError):
            j.verify_operator("02", "9", NOW)
    assert j.verify_operator("02", "0000", NOW + timedelta(minutes=2)).code == "02"
    j.set_password("02", "2468")
    with pytest.raises(OperatorError):
        j.verify_operator("02", "0000", NOW + timedelta(minutes=3))
    with pytest.raises(OperatorError):
        j.add_operator("03", "operator", "12")
    j.add_operator("03", "operator", "1357")
    assert j.operator("03") is not None
    row = j.conn.execute("SELECT hash FROM operators WHERE code = '03'").fetchone()[0]
    assert row.startswith("$argon2id$") and "1357" not in row


def test_config_is_per_terminal_file(tmp_path: Path) -> None:
    a = Journal.open(
        tmp_path, config=TerminalConfig(terminal_id="10000002", tmk=bytes.fromhex("31" * 8 + "32" * 8))
    )
    b = Journal.open(tmp_path, config=TerminalConfig())
    assert a.path != b.path and a.config.terminal_id == "10000002" and b.config.terminal_id == "10000001"
    a.set_config(replace(a.config, serial="NEWSER01"))
    a.close()
    assert Journal.open(tmp_path, "10000002").config.serial == "NEWSER01"
    assert PAN  # keep the shared fixture import used
