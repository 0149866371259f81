"""``posgate fleet``: N simulated POS terminals in one process against a CUP host.

Theory of operation
-------------------
Each :class:`SimTerminal` is a real terminal: the terminal package's own asyncio client
(:class:`~posgate.terminal.client.TerminalSession`: the sans-IO core with its keys, batch,
STAN, pending reversal, offline queue and signatures, a connection per operation closed after
any timeout or error) and, with a state directory, its durable
:class:`~posgate.terminal.journal.Journal` (one SQLite file per terminal; without one the
terminals live in memory, which is what a benchmark wants: no fsync on the load side).
Sessions are cheap: a thousand share one event loop. One asyncio task per terminal runs: sign-on, then operations
drawn from the mix (``sale=70,void=5,...``; an operation with nothing to act on — a void
with no sale to void — becomes a sale), a settlement with batch upload whenever the batch
holds ``settle_every`` transactions (CUP's n3 counts cap a batch below 1000), and a final
settlement when the run ends (after ``duration`` seconds or ``transactions`` operations).

The journal keeps every batch, settled ones included: :meth:`SimTerminal.ledger_entries` is
the terminal's side of the three-ledger audit of :mod:`posgate.fleet.audit`.
:meth:`SimTerminal.arm_power_loss` makes the next exchange abandon the core after its request
left and before the reply is read; the terminal is then reopened from its journal on disk —
what a terminal that lost power does (the one hook added around the client: a subclass that
overrides its frame read).

The report (:class:`FleetStats`) gives TPS, latency percentiles per operation (the cashier's
wait: from the input to the result, make-up sign-ons and reversals included), response codes,
reversals sent, re-sign-ons, settlements and their results.

Terminals: the four demo terminals (40000001 with SM4 keys), or ``--provision --db URL`` to create N terminals, their
merchants and enough issuer cards directly in the host's database (the store's admin API, the
same one ``posgate admin`` uses). Provisioned TMKs are derived from the TID (test keys: this
is a load generator) so that a second run finds the same keys.

Loopback only; every run is bounded by its duration or transaction count.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from posgate.dialect.ic_params import DEMO_NO_CVM_LIMIT
from posgate.domain.chip import DEMO_CHIP_CARDS, ChipPersonalisation
from posgate.fleet.net import require_loopback
from posgate.terminal import machine
from posgate.terminal.cards import next_atc, read_card, read_qr
from posgate.terminal.client import Endpoint, TerminalSession
from posgate.terminal.journal import Journal
from posgate.terminal.machine import Card, Input, Result, Send, TerminalConfig, TerminalError, TerminalState
from posgate.terminal.state import TxnEntry

# docs/demo-data.md: the four demo terminals (the last one SM4, 国密) and the cards a sale is
# approved on. (TID, MID, TMK, serial, key algorithm)
DEMO_TERMINALS = (
    ("10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001", "des"),
    ("10000002", "898100012340001", "31313131313131313232323232323232", "DEMO0002", "des"),
    ("20000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003", "des"),
    ("40000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0004", "sm4"),
)
DEMO_CARDS = (("6212142000000000012", "3012"), ("4761730000000011", "3012"))
DEMO_PIN = "123456"

OPERATIONS = ("sale", "chip", "tap", "void", "refund", "balance", "preauth", "offline", "signature", "qr")
DEFAULT_MIX = "sale=55,chip=10,tap=5,void=5,refund=3,balance=10,preauth=5,offline=4,signature=3"
# ``chip``: a sale with a chip card inserted, its ARQC made by the terminal's card simulator
# (posgate.terminal.cards) and checked by the issuer; the card checks the ARPC (issue 14). The
# demo fleet uses the demo chip card; a provisioned fleet's cards are chip cards of the demo
# issuer (its master keys, each card its own derived key), each terminal inserting its own.
DEMO_CHIP_CARD = ("6225880000000000010", "3012")
FLEET_CHIP = DEMO_CHIP_CARDS["6225880000000000010"]._replace(psn="00")
# ``tap``: the same chip card tapped (qPBOC, 22 = 07x) with a real online cryptogram. Most taps
# are at or under the AID's no-CVM limit (DF21, docs/decisions.md C2) and go online without a
# PIN (22 = 072, no signature); one in TAP_ABOVE_LIMIT is above it and the cardholder keys the
# PIN (071). The fleet's terminals download the IC parameters at their first sign-on
# (TerminalSpec.ic_params) and apply the limit themselves; the host applies it again (a no-PIN
# tap above it is declined ``55``).
TAP_NO_CVM_LIMIT = DEMO_NO_CVM_LIMIT
TAP_ABOVE_LIMIT = 5
TAP_ABOVE_BY = 20_000  # fen: how far above the limit a PIN tap goes at most (¥200.00)

# Scan-to-pay demo codes the issuer approves (docs/decisions.md Q3): ``qr`` in the mix is a sale
# paid with one of them; a void or refund of such a sale carries its code again (Q1).
DEMO_QR_CODES = ("6288000000000000011", "134567890123456789", "281234567890123456")


def parse_mix(text: str) -> dict[str, int]:
    """``sale=70,void=5`` → {"sale": 70, "void": 5}; unknown names and bad weights raise."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        name = name.strip()
        if name not in OPERATIONS:
            raise ValueError(f"unknown operation {name!r} in the mix; known: {', '.join(OPERATIONS)}")
        if not sep or not weight.strip().isdigit():
            raise ValueError(f"mix entry {part!r}: expected name=weight with an integer weight")
        mix[name] = int(weight)
    if not any(mix.values()):
        raise ValueError("the mix has no operation with a weight above 0")
    return mix


def card_for(pan: str, expiry: str = "3012", pin: str = DEMO_PIN) -> Card:
    """A magstripe read of ``pan`` (track 2 per docs/demo-data.md) with its PIN. A provisioned
    fleet card is a chip card (the ``chip`` operation inserts it): read from its stripe it is a
    fallback (60.5 = 2), else the issuer declines it ``45`` (docs/decisions.md C4)."""
    entry = "fallback" if pan.startswith(FLEET_PAN_PREFIX) else "swipe"
    return Card(pan=pan, entry=entry, track2=f"{pan}={expiry}2010000000000", expiry=expiry, pin=pin)


def _luhn_complete(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


FLEET_PAN_PREFIX = "621214999"


def fleet_pan(i: int) -> str:
    """The i-th provisioned fleet card: a 19-digit CUP debit PAN with a valid Luhn digit."""
    return _luhn_complete(f"{FLEET_PAN_PREFIX}{i:09d}")


def fleet_tmk(terminal_id: str) -> bytes:
    """The TMK provisioned for fleet terminal ``terminal_id`` (test keys, derived, odd parity)."""
    raw = hashlib.sha256(b"posgate-fleet-tmk:" + terminal_id.encode()).digest()[:16]
    return bytes(b & 0xFE | (bin(b & 0xFE).count("1") % 2 == 0) for b in raw)


@dataclass(frozen=True)
class TerminalSpec:
    terminal_id: str
    merchant_id: str
    tmk: bytes = field(repr=False)
    serial: str
    algorithm: str = "des"  # sm4: the terminal signs on with 006 and uses SM4 throughout
    dialect: str = "cup"  # the dialect profile the simulated device speaks
    # Download the CA public keys and IC parameters at the first sign-on (a few messages once per
    # journal): a ``tap`` then knows the no-CVM limit itself (免密免签: no PIN, no signature owed).
    ic_params: bool = True

    def config(self) -> TerminalConfig:
        return TerminalConfig(terminal_id=self.terminal_id, merchant_id=self.merchant_id, tmk=self.tmk,
                              serial=self.serial, scheme="004", algorithm=self.algorithm,
                              dialect=self.dialect, ic_params=self.ic_params)  # fmt: skip


def with_profiles(specs: Sequence[TerminalSpec], text: str) -> list[TerminalSpec]:
    """Assign dialect profiles to the terminals: ``NAME`` (all of them) or a weighted mix
    ``cup=2,gz-bill=1`` dealt out in turn (terminal i gets the i-th of the expanded cycle), so
    the assignment is the same on every run. SM4 terminals stay on the baseline: a profile's
    MAC and PIN format are DES ones (docs/dialect-profiles.md)."""
    from dataclasses import replace

    from posgate.dialect.profiles import BASELINE, PROFILES

    cycle: list[str] = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in PROFILES:
            raise ValueError(f"--profile: no dialect profile {name!r}: one of {', '.join(PROFILES)}")
        if weight and (not weight.isdigit() or int(weight) < 1):
            raise ValueError(f"--profile: the weight of {name} must be a positive integer")
        cycle += [name] * int(weight or 1)
    return [
        replace(s, dialect=BASELINE if s.algorithm == "sm4" else cycle[i % len(cycle)]) for i, s in enumerate(specs)
    ]


def apply_profiles(db_url: str, specs: Sequence[TerminalSpec], *, key_file: str | None = None) -> None:
    """Tell the host (its database) which profile each terminal speaks; audited as ``fleet``."""
    from posgate.store.admin import set_profile
    from posgate.store.database import Database

    db = Database.open(db_url, key_file=key_file)
    try:
        with db.engine.begin() as conn:
            for spec in specs:
                set_profile(conn, spec.terminal_id, spec.dialect, actor="fleet")
    finally:
        db.close()


def demo_specs(n: int) -> list[TerminalSpec]:
    if n > len(DEMO_TERMINALS):
        raise ValueError(f"the demo has {len(DEMO_TERMINALS)} terminals; for {n} use --provision --db URL")
    return [TerminalSpec(t, m, bytes.fromhex(k), s, a) for t, m, k, s, a in DEMO_TERMINALS[:n]]


FLEET_MERCHANT_BASE = 898100099900000
FLEET_TID_BASE = 70000000
TERMINALS_PER_MERCHANT = 50
TERMINALS_PER_CARD = 1  # one cardholder per terminal: no hot issuer row shared between terminals
FLEET_CARD_BALANCE = 10_000_000_000  # fen: 100 million CNY, enough for any bounded soak


def fleet_specs(n: int) -> list[TerminalSpec]:
    specs = []
    for i in range(n):
        tid = f"{FLEET_TID_BASE + i + 1:08d}"
        mid = f"{FLEET_MERCHANT_BASE + i // TERMINALS_PER_MERCHANT + 1:015d}"
        specs.append(TerminalSpec(tid, mid, fleet_tmk(tid), f"FLEET{i + 1:05d}"))
    return specs


def fleet_cards(n_terminals: int) -> list[tuple[str, str]]:
    return [(fleet_pan(i + 1), "3012") for i in range(max(1, -(-n_terminals // TERMINALS_PER_CARD)))]


def provision(db_url: str, n: int, *, key_file: str | None = None) -> tuple[list[TerminalSpec], list[tuple[str, str]]]:
    """Create (idempotently) N fleet terminals, their merchants and cards in the host's database."""
    from sqlalchemy import select, update

    from posgate.store.admin import add_card, add_merchant, add_terminal
    from posgate.store.database import Database
    from posgate.store.schema import cards, merchants, terminals

    specs, card_list = fleet_specs(n), fleet_cards(n)
    db = Database.open(db_url, key_file=key_file)
    try:
        with db.engine.begin() as conn:
            have_m = set(conn.execute(select(merchants.c.merchant_id)).scalars())
            have_t = set(conn.execute(select(terminals.c.terminal_id)).scalars())
            have_c = set(conn.execute(select(cards.c.pan_hash)).scalars())
            for spec in specs:
                if spec.merchant_id not in have_m:
                    add_merchant(conn, spec.merchant_id, f"车队商户 Fleet {spec.merchant_id[-5:]}", "5411", 60,
                                 name_en=f"Fleet merchant {spec.merchant_id[-5:]}", actor="fleet")  # fmt: skip
                    have_m.add(spec.merchant_id)
                if spec.terminal_id not in have_t:
                    add_terminal(conn, db.keyring, spec.terminal_id, spec.merchant_id, tmk=spec.tmk, actor="fleet",
                                 ic_download=False)  # its terminals fetch them at the first sign-on
            for pan, expiry in card_list:
                h = db.keyring.pan_hash(pan)
                if h not in have_c:
                    add_card(conn, db.keyring, pan, expiry, DEMO_PIN, balance=FLEET_CARD_BALANCE, actor="fleet",
                             chip=True, icc_keys=FLEET_CHIP.keys)  # fmt: skip
                else:  # a card provisioned before chip sales existed becomes the chip card it is now used as
                    conn.execute(update(cards).where(cards.c.pan_hash == h, cards.c.icc_keys_enc.is_(None))
                                 .values(chip=True, icc_keys_enc=db.keyring.encrypt_key(FLEET_CHIP.keys, b"icc")))  # fmt: skip
            for code in DEMO_QR_CODES:  # what ``qr`` in the mix pays with
                if db.keyring.pan_hash(code) not in have_c:
                    add_card(conn, db.keyring, code, "3012", DEMO_PIN, balance=FLEET_CARD_BALANCE, actor="fleet",
                             payment_code=True)  # fmt: skip
    finally:
        db.close()
    return specs, card_list


# -- statistics ---------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


@dataclass
class FleetStats:
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    approved: Counter[str] = field(default_factory=Counter)
    operations: int = 0
    messages: int = 0
    reversals_sent: int = 0
    re_sign_ons: int = 0
    sign_ons: int = 0
    timeouts: int = 0
    comm_errors: int = 0
    power_losses: int = 0
    settlements: Counter[str] = field(default_factory=Counter)
    settlement_failures: int = 0
    refused_locally: int = 0

    def record(self, op: str, result: Result, seconds: float) -> None:
        self.operations += 1
        self.latencies[op].append(seconds)
        self.codes[op][result.response_code or result.error or "none"] += 1
        if result.approved:
            self.approved[op] += 1
        if result.error == "timeout":
            self.timeouts += 1
        elif result.error == "comm":
            self.comm_errors += 1

    def count_sends(self, inp: Input, sends: Iterable[Send]) -> None:
        for send in sends:
            self.messages += 1
            if send.purpose == "reversal":
                self.reversals_sent += 1
            elif send.purpose == "sign_on":
                self.sign_ons += 1
                if inp.operation != "sign_on":
                    self.re_sign_ons += 1

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def report(self) -> dict[str, Any]:
        elapsed = max(self.elapsed, 1e-9)
        by_op: dict[str, Any] = {}
        all_codes: Counter[str] = Counter()
        for op in sorted(self.latencies):
            lat = sorted(self.latencies[op])
            all_codes.update(self.codes[op])
            by_op[op] = {
                "count": len(lat),
                "approved": self.approved[op],
                "codes": dict(self.codes[op].most_common()),
                "latency_ms": {k: round(percentile(lat, q) * 1000, 2) for k, q in
                               (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
            }  # fmt: skip
        load_ops = sum(len(v) for k, v in self.latencies.items() if k not in ("sign_on", "settlement"))
        return {
            "elapsed_s": round(elapsed, 3),
            "operations": self.operations,
            "tps": round(load_ops / elapsed, 1),
            "messages": self.messages,
            "messages_per_s": round(self.messages / elapsed, 1),
            "by_operation": by_op,
            "response_codes": dict(all_codes.most_common()),
            "reversals": self.reversals_sent,
            "sign_ons": self.sign_ons,
            "re_sign_ons": self.re_sign_ons,
            "timeouts": self.timeouts,
            "comm_errors": self.comm_errors,
            "power_losses": self.power_losses,
            "refused_locally": self.refused_locally,
            "settlements": {"count": sum(self.settlements.values()), "results": dict(self.settlements),
                            "failed": self.settlement_failures},  # fmt: skip
        }


# -- one terminal ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """One transaction as the terminal's journal holds it (no card data beyond the masked PAN)."""

    terminal_id: str
    batch: str
    stan: str
    operation: str
    amount: int
    status: str
    rrn: str
    pan_masked: str
    response_code: str
    settled: bool = False


class PowerLoss(Exception):
    """Abandons a terminal's exchange after its request left and before the reply is read."""


class _FleetSession(TerminalSession):
    """The terminal client with the power-loss hook of :meth:`SimTerminal.arm_power_loss`."""

    power_loss_armed = False

    async def _read_frame(self) -> bytes:
        if self.power_loss_armed:
            self.power_loss_armed = False
            raise PowerLoss
        return await super()._read_frame()


class SimTerminal:
    """One terminal: a :class:`~posgate.terminal.client.TerminalSession` (core + journal +
    connection) plus what the fleet counts. Not shared between tasks."""

    def __init__(self, spec: TerminalSpec, target: tuple[str, int], *, timeout: float = 10.0,
                 state_dir: Path | None = None, stats: FleetStats | None = None) -> None:  # fmt: skip
        self.spec = spec
        self.state_dir = state_dir
        self.stats = stats or FleetStats()
        self.endpoint = Endpoint(host=require_loopback(target[0]), port=target[1], timeout=timeout,
                                 connect_timeout=timeout)  # fmt: skip
        self.journal: Journal | None = None
        self.session = self._open()

    def _open(self) -> _FleetSession:
        if self.state_dir is None:
            return _FleetSession(machine.new_state(self.spec.config()), self.endpoint)
        self.journal = Journal.open(self.state_dir, self.spec.terminal_id, self.spec.config())
        return _FleetSession(self.journal.load(), self.endpoint, self.journal)

    @property
    def terminal_id(self) -> str:
        return self.spec.terminal_id

    @property
    def state(self) -> TerminalState:
        return self.session.state

    def arm_power_loss(self) -> None:
        """The next request is sent, then the terminal loses power before reading the reply."""
        self.session.power_loss_armed = True

    async def run(self, inp: Input) -> Result:
        """One operation from input to result (what a cashier waits for)."""
        session = self.session
        try:
            result = await session.run(inp)
        except TerminalError as e:
            self.stats.refused_locally += 1
            return Result(inp.operation, error="refused", message_en=str(e))
        except PowerLoss:
            self.stats.count_sends(inp, session.last_sends)
            self.stats.power_losses += 1
            self.reopen()
            return Result(inp.operation, error="power_loss", message_en="the terminal lost power")
        self.stats.count_sends(inp, session.last_sends)
        return result

    def reopen(self) -> None:
        """Power back on: the core in memory is gone; the journal on disk is all that survives."""
        if self.journal is not None:
            self.journal.close()
        self.session = self._open()

    def ledger_entries(self) -> list[LedgerEntry]:
        """Every transaction the terminal's journal holds, settled batches included."""
        if self.journal is not None:
            rows = self.journal.transactions(include_settled=True)
        elif self.state_dir is not None:
            with Journal.open(self.state_dir, self.spec.terminal_id) as j:
                rows = j.transactions(include_settled=True)
        else:
            rows = [(t, False) for t in self.state.txns]
        return [LedgerEntry(self.terminal_id, t.batch, t.stan, t.operation, t.amount, t.status, t.rrn,
                            t.pan_masked, t.response_code, settled) for t, settled in rows]  # fmt: skip

    async def close(self) -> None:
        await self.session.close()
        if self.journal is not None:
            self.journal.close()
            self.journal = None


# -- the workload ----------------------------------------------------------------------------------------


def _again(t: TxnEntry) -> Card:
    """The card of a logged sale presented again: its code when it was a QR payment."""
    return read_qr(t.pan) if t.entry_mode.startswith("03") else card_for(t.pan, t.expiry or "3012")


class Workload:
    """Draws the next operation for a terminal from the mix and builds its input."""

    def __init__(self, mix: dict[str, int], cards: Sequence[tuple[str, str]], rng: random.Random,
                 amounts: tuple[int, int] = (1, 2_000), chip_card: tuple[str, str] | None = None,
                 chip: ChipPersonalisation | None = None, atc: Callable[[str], int] | None = None) -> None:  # fmt: skip
        """``chip_card``: the card the ``chip`` operation inserts and ``tap`` taps (personalised by ``chip``, else a
        demo chip card); ``atc``: where its counter comes from (the terminal's journal), else a
        per-process counter."""
        self.chip_card, self.chip, self.atc = chip_card, chip, atc
        self.names = [k for k, v in mix.items() if v > 0]
        self.weights = [mix[k] for k in self.names]
        self.cards = [card_for(pan, exp) for pan, exp in cards]
        self.rng = rng
        self.amounts = amounts
        self._signature: bytes | None = None

    def signature_jbig(self) -> bytes:
        if self._signature is None:
            from posgate.signature import encode_for_field62, render_strokes

            strokes = [[(10, 40), (30, 10), (50, 45), (70, 12), (95, 42)], [(20, 50), (90, 52)]]
            self._signature = encode_for_field62(render_strokes(strokes, pen=3)).jbig
        return self._signature

    def card(self) -> Card:
        return self.rng.choice(self.cards)

    def amount(self) -> int:
        return self.rng.randint(*self.amounts)

    def next(self, state: TerminalState) -> Input:
        op = self.rng.choices(self.names, self.weights)[0]
        built = self.build(op, state)
        return built if built is not None else Input("sale", amount=self.amount(), card=self.card())

    def build(self, op: str, state: TerminalState) -> Input | None:
        rng = self.rng
        if op == "sale":
            return Input("sale", amount=self.amount(), card=self.card())
        if op in ("chip", "tap"):
            if self.chip_card is None:
                return None
            pan, expiry = self.chip_card
            amount, pin = self.amount(), DEMO_PIN
            if op == "tap":
                above = rng.randrange(TAP_ABOVE_LIMIT) == 0
                amount = TAP_NO_CVM_LIMIT + rng.randint(1, TAP_ABOVE_BY) if above else min(amount, TAP_NO_CVM_LIMIT)
                pin = DEMO_PIN if above else ""  # 免密: under the limit nobody is asked for a PIN
            entry = "insert" if op == "chip" else "tap"
            card = read_card(pan, entry, pin=pin, amount=amount, when=datetime.now(UTC), randbytes=rng.randbytes,
                             expiry=expiry, atc=self.atc(pan) if self.atc else None, chip=self.chip)  # fmt: skip
            return Input("sale", amount=amount, card=card)
        if op == "qr":
            return Input("sale", amount=self.amount(), card=read_qr(rng.choice(DEMO_QR_CODES)))
        if op == "balance":
            return Input("balance", card=self.card())
        if op == "preauth":
            return Input("preauth", amount=self.amount(), card=self.card())
        batch = [t for t in state.txns if t.batch == state.batch]
        if op == "void":
            sales = [t for t in batch if t.operation == "sale" and t.status == "approved" and t.pan]
            if not sales:
                return None
            t = rng.choice(sales)
            return Input("void", voucher=t.stan, card=_again(t))
        if op == "refund":
            sales = [t for t in batch if t.operation == "sale" and t.status == "approved" and t.rrn and t.pan]
            if not sales:
                return None
            t = rng.choice(sales)
            return Input("refund", amount=max(1, t.amount // 2), card=_again(t),
                         rrn=t.rrn, orig_date=t.date or datetime.now(UTC).strftime("%m%d"))  # fmt: skip
        if op == "offline":
            return Input("offline", kind="settlement", amount=self.amount(), card=self.card(),
                         auth_code=f"{rng.randint(0, 999_999):06d}")  # fmt: skip
        if op == "signature":
            unsigned = [t for t in batch if t.signature == "unsigned"]
            if not unsigned:
                return None
            return Input("signature", voucher=rng.choice(unsigned).stan, signature=self.signature_jbig())
        raise ValueError(op)


@dataclass
class FleetConfig:
    host: str = "127.0.0.1"
    port: int = 8583
    terminals: int = 4  # the demo four, the SM4 terminal 40000001 included
    duration: float | None = 10.0
    transactions: int | None = None
    mix: dict[str, int] = field(default_factory=lambda: parse_mix(DEFAULT_MIX))
    state_dir: Path | None = None
    timeout: float = 10.0
    seed: int = 1
    settle: bool = True  # settle every terminal when the load ends
    settle_every: int = 400  # settle a terminal whenever its open batch holds this many (0: never mid-run)
    think: float = 0.0  # seconds a terminal waits between two operations
    ramp: float = 1.0  # seconds over which the terminals sign on
    pause_after_error: float = 0.0  # a terminal whose operation got no answer waits this long (s)
    specs: list[TerminalSpec] | None = None  # default: the demo terminals
    cards: list[tuple[str, str]] | None = None  # default: the demo cards
    # Terminal i pays only with cards[i] (as provision() pairs them): no issuer row shared
    # between terminals, as with real cardholders (benchmarks). Default: any card, any terminal.
    own_card: bool = False


class Fleet:
    """N :class:`SimTerminal` s driven by one event loop. ``await fleet.run()`` → report dict."""

    def __init__(self, config: FleetConfig, *, on_progress: Callable[[Fleet], None] | None = None) -> None:
        self.config = config
        require_loopback(config.host)
        specs = config.specs if config.specs is not None else demo_specs(config.terminals)
        if len(specs) < config.terminals:
            raise ValueError(f"{config.terminals} terminals asked, {len(specs)} available")
        self.stats = FleetStats()
        self.rng = random.Random(config.seed)
        self.cards = config.cards or list(DEMO_CARDS)
        self.terminals = [
            SimTerminal(spec, (config.host, config.port), timeout=config.timeout, stats=self.stats,
                        state_dir=config.state_dir)  # fmt: skip
            for spec in specs[: config.terminals]
        ]
        self.on_progress = on_progress
        self.started_ops = 0
        self._stop = asyncio.Event()
        self._load_started = 0.0
        self.stop_load_at: float | None = None

    def stop(self) -> None:
        """Ask every terminal to finish its current operation and settle."""
        self._stop.set()

    def _budget_left(self) -> bool:
        cfg = self.config
        if self._stop.is_set():
            return False
        if cfg.transactions is not None and self.started_ops >= cfg.transactions:
            return False
        return not (self.stop_load_at is not None and time.monotonic() >= self.stop_load_at)

    async def _terminal_loop(self, t: SimTerminal, index: int) -> None:
        cfg = self.config
        rng = random.Random(cfg.seed * 1_000_003 + index)
        cards = [self.cards[index % len(self.cards)]] if cfg.own_card else self.cards
        # A chip card is in one terminal at a time and its ATC in that terminal's journal (else a
        # per-process counter): the demo's single chip card goes to the first terminal only (the
        # others' ``chip`` draws are plain sales); a provisioned fleet inserts each terminal's own card.
        def journal_atc(pan: str, t: SimTerminal = t) -> int:
            return t.journal.next_atc(pan) if t.journal is not None else next_atc(pan)

        if cfg.cards is None:
            work = Workload(cfg.mix, cards, rng, chip_card=DEMO_CHIP_CARD if index == 0 else None, atc=journal_atc)
        else:
            own = self.cards[index % len(self.cards)]
            work = Workload(cfg.mix, cards, rng, chip_card=own, chip=FLEET_CHIP, atc=journal_atc)
        if cfg.ramp > 0:
            await asyncio.sleep(cfg.ramp * index / max(1, len(self.terminals)))
        await self.timed(t, Input("sign_on"))
        while self._budget_left():
            self.started_ops += 1
            inp = work.next(t.state)
            result = await self.timed(t, inp)
            if cfg.pause_after_error > 0 and result.error in ("timeout", "comm", "power_loss", "mismatch", "mac"):
                await asyncio.sleep(cfg.pause_after_error)
            if cfg.settle_every and self._open_batch_size(t) >= cfg.settle_every:
                await self.settle(t)
            if cfg.think > 0:
                await asyncio.sleep(cfg.think)

    @staticmethod
    def _open_batch_size(t: SimTerminal) -> int:
        return sum(1 for x in t.state.txns if x.batch == t.state.batch)

    async def timed(self, t: SimTerminal, inp: Input) -> Result:
        t0 = time.perf_counter()
        result = await t.run(inp)
        self.stats.record(inp.operation, result, time.perf_counter() - t0)
        return result

    async def settle(self, t: SimTerminal, attempts: int = 5) -> Result:
        """Settle ``t`` (offline advices, 0500, batch upload); retried until it completes."""
        result = Result("settlement", error="not attempted")
        for _ in range(attempts):
            result = await self.timed(t, Input("settlement"))
            s = result.settlement
            if result.approved and s:
                self.stats.settlements[f"{s.get('domestic_result')}{s.get('foreign_result')}"
                                       f"/{s.get('batch_upload_end') or '-'}"] += 1  # fmt: skip
                return result
            await asyncio.sleep(0.2)
        self.stats.settlement_failures += 1
        return result

    async def run(self, *, close: bool = True) -> dict[str, Any]:
        """Sign on, load, settle (if configured); the report. ``close=False`` leaves the
        terminals open (journals included) for more work, e.g. a settlement after faults stop;
        then call :meth:`close`."""
        cfg = self.config
        self.stats = FleetStats()
        for t in self.terminals:
            t.stats = self.stats
        self._load_started = time.monotonic()
        if cfg.duration is not None:
            self.stop_load_at = self._load_started + cfg.ramp + cfg.duration
        ticker = asyncio.create_task(self._tick()) if self.on_progress else None
        try:
            await asyncio.gather(*(self._terminal_loop(t, i) for i, t in enumerate(self.terminals)))
            load_ended = time.monotonic()
            if cfg.settle:
                await asyncio.gather(*(self.settle(t) for t in self.terminals))
            self.stats.ended = load_ended
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            if close:
                await self.close()
        report = self.stats.report()
        report.update({"terminals": len(self.terminals), "target": f"{cfg.host}:{cfg.port}",
                       "mix": cfg.mix, "seed": cfg.seed})  # fmt: skip
        return report

    async def close(self) -> None:
        await asyncio.gather(*(t.close() for t in self.terminals), return_exceptions=True)

    async def _tick(self) -> None:
        assert self.on_progress is not None
        while True:
            self.on_progress(self)
            await asyncio.sleep(0.25)

    def ledgers(self) -> dict[str, list[LedgerEntry]]:
        return {t.terminal_id: t.ledger_entries() for t in self.terminals}


# -- the command ---------------------------------------------------------------------------------------


def run_with_progress(fleet: Fleet, *, show: bool = True, describe: str = "fleet") -> dict[str, Any]:
    """Run ``fleet`` on a fresh event loop (uvloop when installed) with a live Rich progress bar."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    cfg = fleet.config
    total = cfg.transactions if cfg.transactions is not None else (cfg.duration or 0) + cfg.ramp
    by_count = cfg.transactions is not None
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=console, transient=False, disable=not show)  # fmt: skip
    task = progress.add_task(describe, total=total or None, info="")

    def update(f: Fleet) -> None:
        s = f.stats
        el = max(s.elapsed, 1e-9)
        done = f.started_ops if by_count else min(el, total)
        info = (f"{s.operations} ops  {s.operations / el:7.1f} ops/s  approved {sum(s.approved.values())}  "
                f"timeouts {s.timeouts}  reversals {s.reversals_sent}")  # fmt: skip
        progress.update(task, completed=done, info=info)

    fleet.on_progress = update if show else None
    with progress:
        return _run_loop(fleet.run())


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def format_report(report: dict[str, Any]) -> Iterable[str]:
    yield (f"{report['terminals']} terminals → {report['target']}: {report['operations']} operations in "
           f"{report['elapsed_s']:.1f} s, {report['tps']} TPS ({report['messages_per_s']} messages/s)")  # fmt: skip
    yield f"{'operation':<12} {'count':>7} {'approved':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}  codes"
    for op, d in report["by_operation"].items():
        lat = d["latency_ms"]
        codes = " ".join(f"{k}:{v}" for k, v in d["codes"].items())
        yield (f"{op:<12} {d['count']:>7} {d['approved']:>8} {lat['p50']:>8} {lat['p90']:>8} {lat['p99']:>8} "
               f"{lat['max']:>8}  {codes}")  # fmt: skip
    yield (f"reversals sent {report['reversals']}, sign-ons {report['sign_ons']} (re-sign-ons {report['re_sign_ons']}), "
           f"timeouts {report['timeouts']}, comm errors {report['comm_errors']}, power losses {report['power_losses']}")  # fmt: skip
    s = report["settlements"]
    yield f"settlements {s['count']} (failed {s['failed']}): " + (
        ", ".join(f"{k} ×{v}" for k, v in s["results"].items()) or "none") + "  [flags domestic+foreign / upload end]"
