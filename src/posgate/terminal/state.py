"""The terminal's state as plain, immutable data (part of the sans-IO core).

What it owns: everything a CUP POS terminal must remember between two messages and across a
power loss — configuration (TID, MID, TMK, device serial, key scheme), the working keys of the
last sign-on, the batch and STAN counters, the sign-on date and any make-up sign-on that is
owed, downloaded parameters (spec 3.12), the pending reversal (section 8), the batch's
transaction log (with offline advices waiting to be trickled, advices — refunds, offline —
sent but not yet acknowledged, and e-signatures waiting to go up), and a short list of events (sign-on attempts, reversal outcomes) that the journal drains.

Invariants:

* Every value is immutable; the core derives a new state with :func:`dataclasses.replace`.
  A shell (client, TUI, fleet) keeps the latest state and gives it to the journal, which
  compares it with what it last wrote and persists only what changed.
* Track data, PINs and PIN blocks never appear here: they live only in the in-flight
  :class:`~posgate.terminal.machine.Flow` (``state.flow``), which is never persisted and is
  dropped when the operation ends.
* ``repr`` never shows key material (``TerminalConfig.tmk`` and ``WorkingKeys`` hide it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from posgate.crypto import WorkingKeys
from posgate.iso8583 import Message

if TYPE_CHECKING:
    from posgate.terminal.machine import Flow

DEMO_TMK = bytes.fromhex("159D86C7C1F779EA29F77A6858E0DA2A")

STAN_MAX = 999_999
BATCH_MAX = 999_999

DEFAULT_TIMEOUT = 60  # seconds (parameter tag 12; PS21/PS22 default)
DEFAULT_REVERSAL_ATTEMPTS = 3  # parameter tag 23 (BW default 3)
# Sends of one advice (refund, offline) without an acknowledgement before it is flagged for the
# cashier and the console and no longer re-sent by itself (docs/decisions.md R5).
DEFAULT_ADVICE_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    """What is provisioned into the device: identities, the TMK and preferences."""

    terminal_id: str = "10000001"
    merchant_id: str = "898100012340001"
    tmk: bytes = field(default=DEMO_TMK, repr=False)
    serial: str = "DEMO0001"
    scheme: str = "004"  # sign-on key scheme (60.3 001 / 003 / 004; 006 with algorithm sm4)
    currency: str = "156"
    merchant_name: str = "演示便利店"
    timezone: str = "Asia/Shanghai"
    mac_algorithm: str = "cup"  # cup (5.2) | x919 (5.4, per-terminal option)
    encrypt_tracks: bool = True  # with a TDK (scheme 004): fields 35/36 encrypted, 53.3 = 1
    partial_approval: bool = False  # 60.6
    dialect: str = "cup"  # the dialect profile the device speaks (posgate.dialect.profiles)
    # The TMK's cipher: des, or sm4 (国密: signs on with 006; SM4 MAC, PIN block in 62 and
    # track encryption, docs/dialect.md 4.4).
    algorithm: str = "des"
    # Download IC public keys and IC parameters (370-372, 380-382) by itself at the first sign-on
    # while none are loaded (the host's header requirement 4 / 5 is obeyed either way).
    ic_params: bool = False

    def sign_on_scheme(self) -> str:
        """The 60.3 key scheme this terminal signs on with (006 whenever its TMK is SM4)."""
        return "006" if self.algorithm == "sm4" else self.scheme


@dataclass(frozen=True, slots=True)
class TxnEntry:
    """One transaction of the current batch, as the terminal keeps it for void, refund,
    settlement totals, batch upload, reprint and the e-signature.

    ``status``: ``approved`` | ``voided`` (a sale/completion later voided) | ``offline_pending``
    (offline advice not yet accepted by the host) | ``offline_sent`` | ``offline_declined`` |
    ``refund_pending`` (a refund sent and not yet acknowledged: queued, re-sent as stored) |
    ``refund_unconfirmed`` (still unacknowledged after the advice attempts: flagged) |
    ``declined`` (a refund the host declined). ``request``: an advice as first sent (MTI..63
    without the MAC, no track or PIN data) while it waits for its acknowledgement.
    ``signature``: ``unsigned`` (no signature uploaded; needs a make-up signature) |
    ``pending`` (captured, waiting for upload) | ``uploaded`` | ``""`` (not applicable).
    """

    stan: str
    batch: str
    operation: str
    amount: int
    pan: str = field(default="", repr=False)
    expiry: str = field(default="", repr=False)
    entry_mode: str = ""
    card_org: str = "CUP"
    rrn: str = ""
    auth_code: str = ""
    response_code: str = "00"
    date: str = ""  # MMDD (host field 13, else local)
    time: str = ""  # hhmmss
    at: str = ""  # local ISO timestamp of the terminal
    operator: str = "01"
    status: str = "approved"
    original_stan: str = ""
    original_batch: str = ""
    original_date: str = ""
    tip: int = 0
    signature: str = ""
    send_count: int = 0
    card_seq: str = ""
    icc: bytes = field(default=b"", repr=False)  # field 55 as sent (EMV data; no PIN or track)
    issuer_bank: str = ""
    acquirer_bank: str = ""
    settlement_date: str = ""
    script: str = ""  # "pending:<script id hex>" when the issuer sent scripts (71/72), then "sent"
    request: bytes = field(default=b"", repr=False)  # a queued advice as first sent, without MAC
    no_cvm: bool = False  # a contactless sale under the no-CVM limit: 免密免签 (docs/decisions.md C2)

    @property
    def pan_masked(self) -> str:
        from posgate.domain.masking import mask_pan

        return mask_pan(self.pan)

    @property
    def domestic(self) -> bool:
        return self.card_org.strip() in ("", "CUP")

    @property
    def offline(self) -> bool:
        return self.operation in (
            "offline_settlement",
            "settlement_adjust",
            "tip_adjust",
            "completion_advice",
        )


@dataclass(frozen=True, slots=True)
class PendingReversal:
    """The reversal record of section 8: the 0400 to send (without MAC; 39 = reason)."""

    message: Message
    operation: str
    stan: str
    amount: int
    category: str = "60"
    attempts: int = 0
    created_at: str = ""

    @property
    def reason(self) -> str:
        return self.message.text(39)

    def with_reason(self, reason: str) -> PendingReversal:
        return replace(self, message=self.message.with_fields({39: reason}))


@dataclass(frozen=True, slots=True)
class Event:
    """Something the journal keeps forever: a sign-on attempt (with its cause), a reversal
    outcome, a notice shown to the cashier."""

    at: str
    kind: str  # sign_on | sign_off | reversal | notice | settlement | parameters
    cause: str = ""
    result: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TerminalState:
    config: TerminalConfig = field(default_factory=TerminalConfig)
    keys: WorkingKeys | None = None
    key_scheme: str = ""
    batch: str = "000001"
    stan: int = 0  # the last STAN used; the next is stan + 1 (wrapping to 1)
    signed_on_date: str = ""  # YYYY-MM-DD, terminal local time
    sign_on_owed: str = ""  # cause of a make-up sign-on owed before the next transaction
    clock_offset: int = 0  # host time minus terminal time at the last sign-on, seconds
    params: Mapping[str, str] = field(default_factory=dict)
    # Downloaded IC data (docs/dialect.md 3.12): {"capks": [Capk fields...], "capks_at": ISO time,
    # "aids": [AidParams fields...], "aids_at": ISO time}; a list is replaced whole by a download.
    ic: Mapping[str, Any] = field(default_factory=dict)
    reversal: PendingReversal | None = None
    txns: tuple[TxnEntry, ...] = ()
    signatures: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # STAN -> JBIG
    events: tuple[Event, ...] = ()
    flow: Flow | None = None
    last_settlement: Mapping[str, Any] = field(default_factory=dict)

    # --- small queries used by the core and the shells
    def param(self, tag: str, default: str = "") -> str:
        return self.params.get(tag, default) or default

    @property
    def timeout(self) -> int:
        v = self.param("12")
        return int(v) if v.isdigit() and int(v) > 0 else DEFAULT_TIMEOUT

    @property
    def reversal_attempts(self) -> int:
        v = self.param("23")
        return int(v) if v.isdigit() and int(v) > 0 else DEFAULT_REVERSAL_ATTEMPTS

    @property
    def advice_attempts(self) -> int:
        return DEFAULT_ADVICE_ATTEMPTS

    @property
    def auto_sign_off(self) -> bool:
        return self.param("21") == "1"

    @property
    def ic_loaded(self) -> bool:
        """Whether IC public keys and IC parameters were downloaded (even empty lists)."""
        return bool(self.ic.get("capks_at")) and bool(self.ic.get("aids_at"))

    @property
    def merchant_name(self) -> str:
        return self.param("22") or self.config.merchant_name

    def txn(self, stan: str, batch: str | None = None) -> TxnEntry | None:
        for t in reversed(self.txns):
            if t.stan == stan and (batch is None or t.batch == batch):
                return t
        return None

    def with_txn(self, entry: TxnEntry) -> TerminalState:
        """Insert or replace (by batch + STAN) a transaction of the log."""
        out = [t for t in self.txns if not (t.stan == entry.stan and t.batch == entry.batch)]
        out.append(entry)
        return replace(self, txns=tuple(out))

    def with_event(self, event: Event) -> TerminalState:
        return replace(self, events=(*self.events, event))

    def drained(self) -> TerminalState:
        """The state without its undrained events (after the journal wrote them)."""
        return replace(self, events=()) if self.events else self


def next_stan(state: TerminalState) -> tuple[TerminalState, str]:
    """Take the next STAN (000001..999999, wrapping to 000001)."""
    n = state.stan + 1
    if n > STAN_MAX or n < 1:
        n = 1
    return replace(state, stan=n), f"{n:06d}"


def next_batch(batch: str) -> str:
    n = int(batch) + 1 if batch.isdigit() else 1
    return f"{n if 1 <= n <= BATCH_MAX else 1:06d}"
