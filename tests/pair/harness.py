"""The pair harness: a minimal in-test CUP terminal wired to the host's ``process()`` in memory.

No sockets, no clock: a :class:`Clock` the test moves, seeded randomness, the demo memory
store and the built-in issuer. The terminal builds requests with the codec and
``posgate.crypto`` exactly as sections 3–6 describe (sign-on unwraps and verifies the working
keys, requests are MACed, PINs go as format-0 blocks under the PIK, tracks optionally under
the TDK) and checks every reply the way LY/BW do (MTI + 10, 11/41/42 echoed, the MAC of an
approved reply). The terminal engineer can later swap :class:`PairTerminal` for the real
terminal core and keep the scenarios.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from posgate.crypto import (
    WorkingKeys,
    cup_ecb_mac,
    encrypt_pin,
    encrypt_track,
    mac_verify,
    unwrap_working_keys,
    x9_19_mac,
)
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import (
    Balance,
    BatchUploadEntries,
    BatchUploadEntry,
    Field60,
    Field61,
    SettlementTotals,
    SideTotals,
    terminal_info,
)
from posgate.dialect.operations import OPERATIONS
from posgate.host.issuer import BuiltinIssuer
from posgate.host.memory import MemoryStore, demo_memory_store
from posgate.host.pipeline import HostReply, process
from posgate.host.ports import Env
from posgate.iso8583 import FieldValue, Message

HEADER = bytes.fromhex("603100000000")
PIN = "123456"

MART = "898100012340001"
BISTRO = "898100012340002"
# TID → (MID, TMK, device serial), docs/demo-data.md
TERMINALS = {
    "10000001": (MART, bytes.fromhex("159D86C7C1F779EA29F77A6858E0DA2A"), "DEMO0001"),
    "10000002": (MART, bytes.fromhex("31313131313131313232323232323232"), "DEMO0002"),
    "20000001": (BISTRO, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), "DEMO0003"),
}
CARDS = {
    "ok": ("6212142000000000012", "3012"),
    "poor": ("6217000000000000020", "3012"),
    "expired": ("6217000000000000038", "2001"),
    "lost": ("6217000000000000046", "3012"),
    "stolen": ("6217000000000000053", "3012"),
    "restricted": ("6217000000000000061", "3012"),
    "limited": ("6217000000000000079", "3012"),
    "credit": ("6225880000000000010", "3012"),
    "visa": ("4761730000000011", "3012"),
}
# Cards whose issuer record says they carry a chip. The harness reads them from the stripe as a
# terminal does after the chip failed (60.5 = 2): a plain swipe of a chip card is declined 45
# (docs/decisions.md C4); ``financial(..., fallback=False)`` sends one.
CHIP_CARDS = frozenset({"credit"})


def track2(pan: str, expiry: str) -> str:
    return f"{pan}={expiry}2010000000000"


class Clock:
    """A fixed clock the test moves. Starts 2024-05-06 10:00 Asia/Shanghai (02:00 UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2024, 5, 6, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)

    def next_day(self, days: int = 1) -> None:
        self.t += timedelta(days=days)


@dataclass
class World:
    """Host side of the pair: clock, env, store, issuer."""

    clock: Clock
    env: Env
    store: MemoryStore
    issuer: BuiltinIssuer

    def process(self, body: bytes, header: bytes = HEADER) -> HostReply:
        return process(header, body, self.store, self.issuer, self.env)


def make_world(seed: int = 7, **env_kw: Any) -> World:
    clock = Clock()
    rnd = random.Random(seed)
    env = Env(now=clock, randbytes=rnd.randbytes, **env_kw)
    store = demo_memory_store(env)
    issuer = BuiltinIssuer.with_random_zone_key(store, random.Random(seed + 1).randbytes, env.timezone)
    return World(clock, env, store, issuer)


@dataclass
class Result:
    """One exchange seen from the terminal."""

    request: Message
    reply: Message | None
    host: HostReply
    mac_ok: bool | None = None  # None when the reply carried no MAC

    @property
    def code(self) -> str | None:
        return self.reply.text(39) if self.reply is not None else None

    @property
    def requirement(self) -> str:
        return f"{self.host.header[2] & 0x0F}"

    def __getitem__(self, n: int) -> FieldValue:
        assert self.reply is not None
        return self.reply[n]


@dataclass
class Txn:
    """What the terminal keeps of an approved transaction (its journal line)."""

    kind: str
    stan: str
    batch: str
    amount: int
    pan: str
    rrn: str
    auth: str
    day: str  # MMDD
    org: str
    extra: dict[str, Any] = field(default_factory=dict)


class PairTerminal:
    """A minimal CUP terminal: enough to drive every host path; not the product terminal."""

    def __init__(self, world: World, tid: str = "10000001", *, serial: str | None = None,
                 mac_algorithm: str = "cup") -> None:  # fmt: skip
        self.world = world
        self.tid = tid
        self.mid, self.tmk, default_serial = TERMINALS[tid]
        self.serial = serial or default_serial
        self.stan = 0
        self.batch = "000001"
        self.keys: WorkingKeys | None = None
        self.scheme = "004"
        self.mac_algorithm = mac_algorithm
        self.journal: list[Txn] = []
        self.encrypt_tracks = False

    # -- plumbing ---------------------------------------------------------------------
    def next_stan(self) -> str:
        self.stan = self.stan % 999999 + 1
        return f"{self.stan:06d}"

    def mac(self, mab: bytes) -> bytes:
        assert self.keys is not None
        if self.mac_algorithm == "x919":
            k = self.keys.mak if len(self.keys.mak) == 16 else self.keys.mak * 2
            return x9_19_mac(k, mab)
        return cup_ecb_mac(self.keys.mak, mab)

    def send(self, mti: str, fields: dict[int, FieldValue], *, mac: bool, body: bytes | None = None) -> Result:
        request = Message(mti, {k: v for k, v in fields.items() if v is not None})
        if body is None:
            body = CODEC.encode(request, mac=self.mac if mac else None)
        host = self.world.process(body)
        reply = CODEC.decode(host.body) if host.body is not None else None
        result = Result(request, reply, host)
        if reply is not None:
            assert reply.mti == f"{int(mti) + 10:04d}", "reply MTI must be request MTI + 10"
            assert reply.text(11) == request.text(11), "STAN echoed"
            assert reply.text(41) == request.text(41), "TID echoed"
            if reply.text(39) == "00":
                assert reply.text(42) == request.text(42), "MID echoed when approved"
            if 64 in reply:
                result.mac_ok = mac_verify(self.mac(reply.mac_block()), reply.data(64) or b"")
        return result

    def base(self, stan: str | None = None) -> dict[int, FieldValue]:
        return {11: stan or self.next_stan(), 41: self.tid, 42: self.mid}

    def f60(self, type_code: str, nmic: str = "000", financial: bool = True, fallback: bool = False) -> str:
        return Field60(type_code, self.batch, nmic, *(("6", "2" if fallback else "0") if financial else ())).format()

    def card_fields(self, card: str, pin: str | None, manual: bool = False) -> dict[int, FieldValue]:
        pan, expiry = CARDS.get(card, (card, "3012"))
        out: dict[int, FieldValue] = {}
        if manual:
            out[2], out[14] = pan, expiry
            out[22] = "011" if pin else "012"
        else:
            t2 = track2(pan, expiry)
            if self.encrypt_tracks:
                assert self.keys is not None and self.keys.tdk is not None
                t2 = encrypt_track(self.keys.tdk, t2)
            out[35] = t2
            out[22] = "021" if pin else "022"
        if pin is not None:
            assert self.keys is not None
            out[26] = "12"
            out[52] = encrypt_pin(self.keys.pik, pin, pan)
        if pin is not None or self.encrypt_tracks:
            alg = "6" if len(self.keys.pik) == 16 else "0"  # type: ignore[union-attr]
            out[53] = "2" + alg + ("1" if self.encrypt_tracks and not manual else "0") + "0" * 13
        return out

    def _remember(self, kind: str, r: Result, card: str, amount: int, **extra: Any) -> Txn | None:
        if r.code != "00":
            return None
        pan = CARDS.get(card, (card, ""))[0]
        t = Txn(kind, r.request.text(11), self.batch, amount, pan, r.reply.text(37) if r.reply else "",
                r.reply.text(38) if r.reply else "", r.reply.text(13) if r.reply else "",
                (r.reply.text(63)[:3] if r.reply and 63 in r.reply else "CUP"), extra)  # fmt: skip
        self.journal.append(t)
        return t

    # -- network management -----------------------------------------------------------------
    def sign_on(self, scheme: str = "004", operator: str = "01 ", serial: str | None = "default") -> Result:
        fields = self.base()
        fields[60] = Field60("00", self.batch, scheme).format()
        fields[63] = operator
        if serial is not None:
            fields[62] = terminal_info(self.serial if serial == "default" else serial)
        r = self.send("0800", fields, mac=False)
        if r.code == "00":
            self.keys = unwrap_working_keys(self.tmk, scheme, r.reply.data(62) or b"")  # type: ignore[union-attr]
            self.scheme = scheme
            self.batch = Field60.parse(r.reply.text(60)).batch_no  # type: ignore[union-attr]
        return r

    def sign_off(self) -> Result:
        return self.send("0820", {**self.base(), 60: Field60("00", self.batch, "002").format()}, mac=False)

    def echo(self) -> Result:
        return self.send("0820", {**self.base(), 60: Field60("00", self.batch, "301").format()}, mac=False)

    def download_parameters(self) -> Result:
        return self.send("0800", {**self.base(), 60: Field60("00", self.batch, "360").format()}, mac=False)

    def upload_status(self) -> Result:
        return self.send("0820", {**self.base(), 60: Field60("00", self.batch, "362").format(),
                                  62: b"011021031041051" + b"1160"}, mac=False)  # fmt: skip

    # -- financial ------------------------------------------------------------------------------
    def financial(self, op: str, amount: int | None, card: str | None, pin: str | None = None, *,
                  f61: str | None = None, rrn: str | None = None, auth: str | None = None,
                  manual: bool = False, extra: dict[int, FieldValue] | None = None,
                  fallback: bool | None = None) -> Result:  # fmt: skip
        o = OPERATIONS[op]
        fields = self.base()
        if fallback is None:
            fallback = card in CHIP_CARDS and not manual
        fields.update({3: o.processing_code, 25: o.condition_code, 49: "156", 60: self.f60(o.type_code, fallback=fallback)})
        if amount is not None:
            fields[4] = f"{amount:012d}"
        if card is not None:
            fields.update(self.card_fields(card, pin, manual))
        else:
            fields[22] = "012"
        if f61:
            fields[61] = f61
        if rrn:
            fields[37] = rrn
        if auth:
            fields[38] = auth
        if extra:
            fields.update(extra)
        r = self.send(o.mti, fields, mac=True)
        self.last = r
        return r

    def balance(self, card: str = "ok", pin: str | None = PIN) -> Result:
        return self.financial("balance", None, card, pin)

    def sale(self, card: str = "ok", amount: int = 10_000, pin: str | None = PIN, **kw: Any) -> Result:
        r = self.financial("sale", amount, card, pin, **kw)
        self._remember("sale", r, card, amount)
        return r

    def void(self, original: Txn, amount: int | None = None, card: str | None = None, pin: str | None = None) -> Result:
        f61 = Field61(original.batch, original.stan).format()
        r = self.financial("void", original.amount if amount is None else amount, card, pin, f61=f61,
                           rrn=original.rrn, auth=original.auth)  # fmt: skip
        self._remember("void", r, card or original.pan, original.amount)
        return r

    def refund(self, original: Txn, amount: int, card: str | None = None, date: str | None = None) -> Result:
        f61 = Field61("000000", "000000", date or original.day).format()
        r = self.financial("refund", amount, card or original.pan, None, f61=f61, rrn=original.rrn,
                           extra={63: original.org})  # fmt: skip
        self._remember("refund", r, card or original.pan, amount)
        return r

    def preauth(self, card: str = "ok", amount: int = 50_000, pin: str | None = PIN) -> Result:
        o = OPERATIONS["preauth"]
        del o
        r = self.financial("preauth", amount, card, pin)
        self._remember("preauth", r, card, amount)
        return r

    def preauth_void(self, pre: Txn, amount: int | None = None) -> Result:
        f61 = Field61(pre.batch, pre.stan, pre.day).format()
        r = self.financial("preauth_void", pre.amount if amount is None else amount, pre.pan, None, f61=f61,
                           auth=pre.auth)  # fmt: skip
        self._remember("preauth_void", r, pre.pan, pre.amount)
        return r

    def completion(self, pre: Txn, amount: int, advice: bool = False) -> Result:
        f61 = Field61(pre.batch, pre.stan, pre.day, "00" if advice else "").format()
        op = "completion_advice" if advice else "completion"
        r = self.financial(op, amount, pre.pan, None, f61=f61, auth=pre.auth)
        self._remember(op, r, pre.pan, amount)
        return r

    def completion_void(self, comp: Txn) -> Result:
        f61 = Field61(comp.batch, comp.stan, comp.day).format()
        r = self.financial("completion_void", comp.amount, None, None, f61=f61, rrn=comp.rrn, auth=comp.auth)
        self._remember("completion_void", r, comp.pan, comp.amount)
        return r

    def offline(self, op: str, amount: int, card: str = "ok", original: Txn | None = None, tip: int = 0,
                auth: str = "654321") -> Result:  # fmt: skip
        if original is not None:
            f61 = Field61(original.batch, original.stan, original.day, "00").format()
        else:
            f61 = Field61("000000", "000000", "0000", "00").format()
        extra: dict[int, FieldValue] = {63: "CUP"}
        if tip:
            extra[48] = f"{tip:012d}"
        r = self.financial(op, amount, card, None, f61=f61, auth=auth, rrn=original.rrn if original else None,
                           extra=extra)  # fmt: skip
        self._remember(op, r, card, amount, auth=auth)
        return r

    def reversal_of(self, request: Message, reason: str = "98") -> Result:
        """The 0400 a terminal builds from its persisted copy of ``request`` (section 8)."""
        fields = {n: request[n] for n in request if n not in (26, 35, 36, 37, 52, 53, 64)}
        fields[39] = reason
        return self.send("0400", fields, mac=True)

    def script_advice(self, original: Txn) -> Result:
        fields = {**self.base(), 60: Field60("00", self.batch, "951").format(),
                  61: Field61(original.batch, original.stan, original.day).format()}  # fmt: skip
        return self.send("0620", fields, mac=True)

    def signature(self, original: Txn, jbig: bytes = b"\x00\x01JBIG-placeholder", receipt: bytes | None = None) -> Result:
        fields = {11: original.stan, 41: self.tid, 42: self.mid, 37: original.rrn, 4: f"{original.amount:012d}",
                  60: Field60("07", original.batch, "800").format(), 62: jbig}  # fmt: skip
        if receipt is not None:
            fields[55] = receipt
        return self.send("0820", fields, mac=True)

    # -- end of day --------------------------------------------------------------------------
    def totals(self) -> SettlementTotals:
        """The terminal's own totals of its journal (9.1), for this batch."""
        acc = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        replaced = {t.extra.get("replaces") for t in self.journal}
        for t in self.journal:
            if t.batch != self.batch or id(t) in replaced:
                continue
            side = OPERATIONS[t.kind].settlement
            if not side:
                continue
            a = acc[t.org.strip() == "CUP"]
            i = 0 if side == "debit" else 2
            a[i] += t.amount
            a[i + 1] += 1
        return SettlementTotals(SideTotals(*acc[True]), SideTotals(*acc[False]))

    def settle(self, totals: SettlementTotals | None = None) -> Result:
        fields = {**self.base(), 48: (totals or self.totals()).format(), 49: "156",
                  60: Field60("00", self.batch, "201").format(), 63: "01 "}  # fmt: skip
        return self.send("0500", fields, mac=False)

    def upload(self, txns: list[Txn]) -> list[Result]:
        out = []
        for i in range(0, len(txns), 8):
            chunk = txns[i : i + 8]
            entries = BatchUploadEntries(tuple(BatchUploadEntry(t.org.strip() != "CUP", t.stan, t.pan, t.amount)
                                               for t in chunk))  # fmt: skip
            out.append(self.send("0320", {**self.base(), 48: entries.format(),
                                          60: Field60("00", self.batch, "201").format()}, mac=False))  # fmt: skip
        return out

    def resend_advice(self, t: Txn) -> Result:
        o = OPERATIONS[t.kind]
        fields = {**self.base(t.stan), 3: o.processing_code, 4: f"{t.amount:012d}", 22: "022", 25: o.condition_code,
                  35: track2(t.pan, "3012"), 38: t.extra.get("auth", t.auth), 49: "156",
                  60: Field60(o.type_code, t.batch, "000").format(),
                  61: Field61("000000", "000000", "0000", "00").format(), 63: "CUP"}  # fmt: skip
        return self.send("0320", fields, mac=True)

    def upload_end(self, count: int, balanced: bool) -> Result:
        return self.send("0320", {**self.base(), 48: f"{count:04d}",
                                  60: Field60("00", self.batch, "207" if balanced else "202").format()}, mac=False)  # fmt: skip

    def after_settlement(self) -> None:
        self.batch = f"{int(self.batch) % 999999 + 1:06d}"


def balance_of(r: Result) -> int:
    return Balance.parse(r.reply.text(54)).amount  # type: ignore[union-attr]
