"""Security cases against ``posgate serve`` over a real socket: each hostile move gets the
expected response, and leaves its trace in the database.

* forged MAC → ``A0``; the third in a row → header requirement 3 (re-sign-on) and the terminal
  flagged (``resign_reason = mac_failures``);
* a captured request replayed → the stored reply, byte for byte, nothing executed again (the
  issuer's balance and the transaction count unchanged);
* a terminal sending another merchant's MID → ``03``;
* sign-on from a device with another serial → ``97``, recorded as a refused sign-on with the
  serial kept pending for approval (D7);
* PIN guessing on one card → ``55``, ``55``, ``75``, the card's tries on record;
* console log-in brute force → lockout, each attempt in the audit log.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from posgate.dialect.cup import CODEC
from posgate.fleet.fleet import card_for
from posgate.fleet.hostproc import HostProcess
from posgate.fleet.net import free_port
from posgate.framing import FrameReader, encode_frame
from posgate.store import schema as s
from posgate.store.engine import make_engine
from posgate.terminal import machine
from posgate.terminal.client import Endpoint, TerminalSession
from posgate.terminal.machine import Input, Send, TerminalConfig

TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100000000")
PAN = "6212142000000000012"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    d: Path = tmp_path_factory.mktemp("sec")
    proc = HostProcess(f"sqlite:///{d / 'host.db'}", port=0, log_path=d / "host.log")
    proc.start()
    yield proc
    proc.close()


def db_rows(host: HostProcess, query: Any) -> list[Any]:
    engine = make_engine(host.db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()


def session(host: HostProcess, tid: str = "10000002", mid: str = "898100012340001", tmk: str = "31313131313131313232323232323232",
            serial: str = "DEMO0002") -> TerminalSession:
    cfg = TerminalConfig(terminal_id=tid, merchant_id=mid, tmk=bytes.fromhex(tmk), serial=serial)
    return TerminalSession(machine.new_state(cfg), Endpoint(port=host.port, timeout=10))


def run(sess: TerminalSession, inp: Input) -> machine.Result:
    return asyncio.run(sess.run(inp))


def send_raw(host: HostProcess, body: bytes, header: bytes = HEADER) -> tuple[bytes, bytes]:
    """One framed request on a fresh connection → (reply header, reply body)."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as sock:
        sock.sendall(encode_frame(TPDU, header, body))
        reader = FrameReader()
        while True:
            data = sock.recv(65536)
            assert data, "the host closed the connection without answering"
            frames = reader.feed(data)
            if frames:
                return frames[0].header, frames[0].body


def build(sess: TerminalSession, inp: Input) -> tuple[bytes, Any]:
    """The request the terminal core would send for ``inp`` (the session's state is not advanced)."""
    _, out = machine.start(sess.state, inp, machine_now())
    assert isinstance(out, Send)
    return out.body, out


def machine_now() -> datetime:
    return datetime.now(UTC)


def balance_of(host: HostProcess, pan_masked_tail: str = "0012") -> int:
    rows = db_rows(host, select(s.cards.c.balance, s.cards.c.pan_masked))
    return next(int(r.balance) for r in rows if r.pan_masked.endswith(pan_masked_tail) and r.pan_masked.startswith("621214"))


def test_forged_mac_is_refused_and_a_forger_is_asked_to_sign_on_again(host: HostProcess) -> None:
    sess = session(host)
    assert run(sess, Input("sign_on")).approved
    codes, requirements = [], []
    for i in range(3):
        body, _ = build(sess, Input("sale", amount=100 + i, card=card_for(PAN)))
        forged = body[:-8] + b"DEADBEEF"
        header, reply = send_raw(host, forged)
        codes.append(CODEC.decode(reply).text(39))
        requirements.append(header[2] & 0x0F)
        sess.state = replace(sess.state, stan=sess.state.stan + 1)  # the next forgery takes a new STAN
    assert codes == ["A0", "A0", "A0"]
    assert requirements[-1] == 3, requirements
    t = db_rows(host, select(s.terminals.c.mac_failures, s.terminals.c.resign_requested, s.terminals.c.resign_reason)
                .where(s.terminals.c.terminal_id == "10000002"))[0]
    assert t.mac_failures >= 3 and t.resign_requested and t.resign_reason == "mac_failures"
    rejected = db_rows(host, select(s.transactions.c.response_code, s.transactions.c.status)
                       .where(s.transactions.c.terminal_id == "10000002", s.transactions.c.response_code == "A0"))
    assert len(rejected) >= 1 and all(r.status == "rejected" for r in rejected)
    # A proper sign-on clears the flag and the terminal trades again.
    assert run(sess, Input("sign_on")).approved
    assert run(sess, Input("sale", amount=150, card=card_for(PAN))).approved


def test_replayed_request_is_answered_from_the_record_not_executed(host: HostProcess) -> None:
    sess = session(host, "20000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003")
    assert run(sess, Input("sign_on")).approved
    body, _ = build(sess, Input("sale", amount=777, card=card_for(PAN)))
    _, first = send_raw(host, body)  # the captured request goes through once...
    assert CODEC.decode(first).text(39) == "00"
    before = balance_of(host)
    count = db_rows(host, select(func.count()).select_from(s.transactions))[0][0]
    for _ in range(3):  # ...and is replayed by an attacker
        _, again = send_raw(host, body)
        assert again == first
    assert balance_of(host) == before
    assert db_rows(host, select(func.count()).select_from(s.transactions))[0][0] == count


def test_another_merchants_mid_is_refused(host: HostProcess) -> None:
    sess = session(host)  # 10000002 belongs to Demo Mart
    assert run(sess, Input("sign_on")).approved
    body, out = build(sess, Input("balance", card=card_for(PAN)))
    msg = out.message.with_fields({42: "898100012340002"})  # Demo Bistro's MID
    from posgate.terminal.operations.base import mac_of

    forged = CODEC.encode(msg, mac=lambda mab: mac_of(sess.state, mab))
    _, reply = send_raw(host, forged)
    assert CODEC.decode(reply).text(39) == "03"


def test_sign_on_from_another_device_is_refused_until_approved(host: HostProcess) -> None:
    genuine = session(host, "10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001")
    assert run(genuine, Input("sign_on")).approved
    clone = session(host, "10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "CLONE999")
    result = run(clone, Input("sign_on"))
    assert not result.approved and result.response_code == "97"
    refused = db_rows(host, select(s.sign_ons.c.kind, s.sign_ons.c.cause, s.sign_ons.c.device_serial, s.sign_ons.c.response_code)
                      .where(s.sign_ons.c.terminal_id == "10000001", s.sign_ons.c.kind == "refused"))
    assert any(r.device_serial == "CLONE999" and r.response_code == "97" for r in refused), refused
    t = db_rows(host, select(s.terminals.c.device_serial, s.terminals.c.pending_serial)
                .where(s.terminals.c.terminal_id == "10000001"))[0]
    assert t.device_serial == "DEMO0001" and t.pending_serial == "CLONE999"


def test_pin_guessing_blocks_the_card(host: HostProcess) -> None:
    sess = session(host, "10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001")
    assert run(sess, Input("sign_on")).approved
    pan = "6217000000000000079"  # demo card with a 500.00 limit: its PIN tries are its own
    codes = [run(sess, Input("sale", amount=100, card=card_for(pan, pin=guess))).response_code
             for guess in ("111111", "222222", "333333")]
    assert codes == ["55", "55", "75"]
    # Blocked for the day, even with the right PIN.
    assert run(sess, Input("sale", amount=100, card=card_for(pan))).response_code == "75"
    rows = db_rows(host, select(s.transactions.c.response_code).where(s.transactions.c.terminal_id == "10000001",
                                                                      s.transactions.c.response_code.in_(("55", "75"))))
    assert sorted(r.response_code for r in rows) == ["55", "55", "75", "75"]
    tries = [r.pin_tries for r in db_rows(host, select(s.cards.c.pin_tries, s.cards.c.pan_masked))
             if r.pan_masked.endswith("0079")]
    assert tries == [3]


def test_console_login_brute_force_is_throttled(tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx")
    console_port = free_port()
    proc = HostProcess(f"sqlite:///{tmp_path / 'console.db'}", port=0, log_path=tmp_path / "host.log", console_port=console_port)
    proc.start()
    try:
        url = f"http://127.0.0.1:{console_port}/api/v1/auth/token"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{console_port}/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("the console did not start")
                time.sleep(0.2)
        statuses = [httpx.post(url, json={"username": "support", "password": f"guess-{i}"}, timeout=10).status_code
                    for i in range(8)]
        assert statuses == [401] * 8
        # Throttled from this address: even the right password is refused here now (the account
        # itself stays open to other addresses: tests/console/test_login_throttle.py).
        right = httpx.post(url, json={"username": "support", "password": "support-demo-pass"}, timeout=10)
        assert right.status_code == 401 and "too many failed logins" in right.text.lower()
        actions = [r.action for r in db_rows(proc, select(s.audit_log.c.action).where(s.audit_log.c.actor == "support"))]
        assert actions.count("login.failed") >= 5 and "login.refused_locked" in actions
    finally:
        proc.close()
