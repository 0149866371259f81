"""Every terminal parameter the console accepts reaches the terminal, or the console refuses it.

The walk set parameter 22 (the merchant name on slips) in the console: accepted, stored, and
then dropped by the host's parameter download, which always sent the merchant's own name.
Here each value goes in through the console API, the host pipeline over the same database
answers the product terminal core (sign-on → header requirement 1 → 0800/360), and the value
must come out in the terminal's parameters — 22 on its slips — or the console must have
answered 400 and stored nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from posgate.console.terminals import PARAMS
from posgate.framing import Header
from posgate.receipt import render_text
from posgate.store import schema as s
from posgate.terminal import machine
from posgate.terminal.cards import read_card
from posgate.terminal.machine import Done, Input, Send
from posgate.terminal.state import TerminalState
from posgate.terminal.tui import slip_for

from .helpers import Env, api_token
from .test_host_integration import SqlWorld, make_world


def run(world: SqlWorld, state: TerminalState, inp: Input) -> tuple[TerminalState, Any, list[str]]:
    now = datetime.now(UTC)
    state, out = machine.start(state, inp, now)
    purposes = []
    while isinstance(out, Send):
        purposes.append(out.purpose)
        reply = world.process(out.body, Header(category=out.category).encode())
        assert reply.body is not None
        state, out = machine.on_reply(state, reply.body, now, requirement=f"{reply.header[2] & 0x0F}")
    assert isinstance(out, Done)
    return state.drained(), out.result, purposes


# What the terminal honours (posgate.terminal.state): a comm timeout (12) or a reversal resend
# count (23) of 0 falls back to its default; a flag (18, 20, 21) reads "1" as on, anything else
# as off. Written out here, independently of the console's own table.
HONOURED = {"12": (1, 99), "18": (0, 1), "20": (0, 1), "21": (0, 1), "23": (1, 9)}


def candidates(tag: str, size: int, digits: bool) -> list[tuple[str, bool]]:
    """(value, should the console accept it)."""
    if digits:
        low, high = HONOURED.get(tag, (0, 10**size - 1))
        return [
            (str(high), True),
            (str(low).zfill(size), True),
            (str(high + 1), False) if high + 1 < 10**size else ("1" * (size + 1), False),
            (str(low - 1).zfill(size), False) if low > 0 else ("0" * size, True),
            ("²", False),  # str.isdigit() says yes; no terminal field can carry it
            ("٣", False),
            ("1a"[:size] if size > 1 else "a", False),
        ]
    return [
        ("演示便利店二号店", True),
        ("汉" * (size // 2), True),  # 40 bytes of GBK
        ("汉" * (size // 2 + 1), False),  # 42 bytes: cannot go in a 40-byte field
        ("Bistro & Bar 24h", True),
        ("A" * size, True),
        ("A" * (size + 1), False),
        ("Café ☕", False),  # no GBK for the cup
        ("tab\there", False),
    ]


def stored_params(env: Env) -> dict[str, str]:
    with env.db.engine.connect() as conn:
        row = conn.execute(select(s.terminals.c.params).where(s.terminals.c.terminal_id == "10000001"))
        return dict(row.scalar_one() or {})


@pytest.mark.parametrize("tag", list(PARAMS))
def test_every_console_parameter_is_delivered_or_refused(env: Env, tag: str) -> None:
    c = env.client()
    sup = api_token(c, "support")
    world = make_world(env.db)
    state = machine.new_state()  # one terminal throughout: its STANs go on
    _zh, _en, width, digits = PARAMS[tag]
    for value, ok in dict(candidates(tag, width, digits)).items():
        before = stored_params(env)
        r = c.put("/api/v1/terminals/10000001/params", headers=sup, json={tag: value})
        if not ok:
            assert r.status_code == 400, (value, r.text)
            assert stored_params(env) == before, value  # refused: nothing stored
            continue
        assert r.status_code == 200, (value, r.text)
        state, result, purposes = run(world, state, Input("sign_on", scheme="004"))
        assert result.approved, result.message
        # header requirement 1 after the console's change; the download's reply asks for the status (2)
        assert purposes == ["sign_on", "parameter_download", "status_upload"], value
        expected = value.zfill(width) if tag in ("12", "19") else value
        assert state.params.get(tag) == expected, value
        with env.db.engine.connect() as conn:
            status = conn.execute(
                select(s.terminals.c.last_status_upload).where(s.terminals.c.terminal_id == "10000001")
            ).scalar_one()
        assert status["params"][tag] == expected, value  # the host sees what the terminal runs with
        if tag == "22":
            assert state.merchant_name == value
            card = read_card("6212142000000000012", "swipe", pin="123456")
            state, sale, _ = run(world, state, Input("sale", amount=1_00, card=card))
            assert sale.approved, sale.message
            slip = render_text(slip_for(state, state.txns[-1]))
            assert value in slip.replace("\n", ""), slip  # wrapped at 32 columns


def test_unknown_parameter_tags_are_refused(env: Env) -> None:
    c = env.client()
    sup = api_token(c, "support")
    for body in ({"16": "02088888888"}, {"25": "1"}, {"merchant_name": "x"}, {"12": "30", "99": "1"}):
        r = c.put("/api/v1/terminals/10000001/params", headers=sup, json=body)
        assert r.status_code == 400, body
    with env.db.engine.connect() as conn:
        assert not conn.execute(
            select(s.terminals.c.params_pending).where(s.terminals.c.terminal_id == "10000001")
        ).scalar_one()
