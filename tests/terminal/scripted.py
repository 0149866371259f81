"""A scripted host for testing the terminal core alone: replies built with the codec, MAC'd
with the MAK the host handed out at sign-on. No sockets, no clock."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from posgate.crypto import WorkingKeys, cup_ecb_mac, generate_working_keys, wrap_working_keys
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field60, SettlementTotals, SideTotals
from posgate.dialect.operations import identify
from posgate.iso8583 import Message
from posgate.terminal import machine
from posgate.terminal.machine import Card, Done, Input, Send
from posgate.terminal.state import TerminalState

NOW = datetime(2026, 3, 2, 2, 0, 0, tzinfo=UTC)  # 10:00 in Shanghai
TMK = bytes.fromhex("159D86C7C1F779EA29F77A6858E0DA2A")
PAN = "6212142000000000012"
TRACK2 = PAN + "=30122010000000000"


def swipe(pin: str = "123456", pan: str = PAN) -> Card:
    return Card(pan=pan, entry="swipe", track2=f"{pan}=30122010000000000", pin=pin)


def det_random(seed: int = 1) -> Any:
    counter = itertools.count(seed)

    def randbytes(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return randbytes


@dataclass
class Host:
    """Answers what the terminal sends; tests override fields per reply."""

    tmk: bytes = TMK
    batch: str = "000001"
    keys: WorkingKeys | None = None
    rrn_counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    sent: list[Message] = field(default_factory=list)
    card_org: str = "CUP"

    def sign_on_reply(self, req: Message, *, corrupt_cv: bool = False, code: str = "00") -> bytes:
        scheme = req.text(60)[8:11]
        keys = generate_working_keys(scheme, det_random(len(self.sent) + 7))
        self.keys = keys
        f62 = wrap_working_keys(self.tmk, scheme, keys)
        if corrupt_cv:
            f62 = f62[:16] + bytes(4) + f62[20:]
        fields: dict[int, Any] = {
            11: req.text(11), 12: "100000", 13: "0302", 32: "00049990", 37: "000000000001", 39: code,
            41: req.text(41), 42: req.text(42), 60: Field60("00", self.batch, scheme).format(),
        }  # fmt: skip
        if code == "00":
            fields[62] = f62
        return CODEC.encode(Message("0810", fields))

    def reply(
        self, req: Message, code: str = "00", *, mac: bool | None = None, bad_mac: bool = False, **over: Any
    ) -> bytes:
        """A generic reply: echoes, 12/13/37/38/39, 63 card org; MAC'd (declines too, like the
        real host: docs/decisions.md R1) when the request carries one, or as ``mac`` says."""
        self.sent.append(req)
        if req.mti == "0800" and req.text(60)[8:11] in ("001", "003", "004") and not over:
            return self.sign_on_reply(req, code=code)
        mti = f"{int(req.mti) + 10:04d}"
        f: dict[int, Any] = {k: req[k] for k in (2, 3, 4, 11, 22, 25, 41, 42, 49, 60, 61) if k in req}
        if req.mti == "0400":
            f[38] = req.text(38) if 38 in req else "000000"
        f.update({12: "100500", 13: "0302", 32: "00049990", 39: code})
        if req.mti in ("0100", "0200", "0220"):
            f[37] = f"{next(self.rrn_counter):012d}"
            f[38] = "123456"
            f[63] = self.card_org
        if req.mti == "0500":
            f[48] = over.pop("f48", req.text(48)[:30] + "1" + req.text(48)[31:61] + "1")
        if req.mti == "0320":
            f[48] = req.text(48) if req.text(60)[8:11] in ("207", "202") else None
            f = {k: v for k, v in f.items() if v is not None}
        for k, v in over.items():
            n = int(k.lstrip("f"))
            if v is None:
                f.pop(n, None)
            else:
                f[n] = v
        msg = Message(mti, f)
        o = identify(req)
        advice_resend = req.mti == "0320" and req.text(60)[8:11] == "000"  # D11: MAC'd like its 0220
        want_mac = (o is not None and (o.mac or advice_resend)) if mac is None else mac
        if want_mac:
            assert self.keys is not None
            mak = self.keys.mak
            if bad_mac:
                return CODEC.encode(msg, mac=lambda mab: b"00000000")
            return CODEC.encode(msg, mac=lambda mab: cup_ecb_mac(mak, mab))
        return CODEC.encode(msg)


def settle_flags(req: Message, domestic: str, foreign: str) -> str:
    t = SettlementTotals.parse(req.text(48))
    d, f = t.domestic, t.foreign
    return SettlementTotals(
        SideTotals(d.debit_amount, d.debit_count, d.credit_amount, d.credit_count, domestic),
        SideTotals(f.debit_amount, f.debit_count, f.credit_amount, f.credit_count, foreign),
    ).format()


def run(
    state: TerminalState, inp: Input, host: Host, now: datetime = NOW, script: Any = None, save: Any = None
) -> tuple[TerminalState, Any, list[Send]]:
    """Drive a flow to the end. ``script(send, host)`` may return bytes, "timeout" or None
    (None = the host's default reply)."""
    state, out = machine.start(state, inp, now)
    sends: list[Send] = []
    while isinstance(out, Send):
        if save is not None:
            state = save(state)
        sends.append(out)
        # The core's promise: the returned state is what must be journaled before sending.
        answer = script(out, host) if script is not None else None
        if answer == "timeout":
            state, out = machine.on_timeout(state, now)
            continue
        requirement = "0"
        if isinstance(answer, tuple):
            answer, requirement = answer
        if answer is None:
            answer = host.reply(out.message)
        state, out = machine.on_reply(state, answer, now, requirement=requirement)
    assert isinstance(out, Done)
    if save is not None:
        state = save(state)
    return state, out.result, sends


def signed_on(host: Host | None = None, scheme: str = "004") -> tuple[TerminalState, Host]:
    host = host or Host()
    state = machine.new_state()
    state, result, _ = run(state, Input("sign_on", scheme=scheme), host)
    assert result.approved, result
    return state, host
