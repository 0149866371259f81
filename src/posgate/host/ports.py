"""The ports between the host's core (pipeline, participants, issuer) and its shells.

The core never imports SQLAlchemy, sockets or the clock: it is handed a :class:`HostStore`
(everything it reads or writes about terminals, merchants, transactions, settlements...), an
:class:`Issuer` (authorisation against the card's issuer) and an :class:`Env` (time, random
bytes, configuration). Two implementations of the store exist: ``posgate.store.sql`` (SQLAlchemy,
SQLite/PostgreSQL, used by the server) and ``posgate.host.memory`` (in memory, for unit tests
and the pair harness). They must behave identically; ``tests/host/test_store_contract.py`` runs
the same contract tests against both.

Unit of work: the shell calls the pipeline for a batch of requests inside one database
transaction (group commit) and sends the replies only after the commit. Every store method is
therefore synchronous and sees the writes made earlier in the same unit of work.

Records are plain frozen dataclasses; ``replace()`` them and call ``update_*`` with the changes.
Sensitive values: ``pan`` appears only in memory during a request; records carry ``pan_hash``,
``pan_masked`` and ``pan_enc``; key fields carry clear keys in memory (decrypted by the store
with the local master key) and are never logged or put in a repr.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from posgate.dialect.ic_params import AidParams, Capk


@dataclass(frozen=True, slots=True)
class MerchantRecord:
    id: int
    merchant_id: str
    name: str
    name_en: str
    mcc: str
    fee_rate_bp: int
    status: str  # active | suspended
    suspended_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TerminalRecord:
    id: int
    terminal_id: str
    merchant_id: str
    tmk: bytes = field(repr=False)
    device_serial: str | None
    pending_serial: str | None
    approved_serial: str | None
    status: str  # active | suspended
    batch_no: str
    signed_on_day: str | None  # YYYY-MM-DD, acquirer tz
    signed_off: bool
    operator: str | None
    key_scheme: str | None
    pik: bytes | None = field(repr=False)
    mak: bytes | None = field(repr=False)
    tdk: bytes | None = field(repr=False)
    mac_algorithm: str  # cup | x919
    mac_failures: int
    resign_requested: bool
    resign_reason: str | None
    params: dict[str, Any]
    params_pending: bool
    # Added by the host core (additive): field 62 of the last 0820/362 status upload, decoded.
    last_status_upload: dict[str, Any] | None = None
    # The cipher of the terminal's TMK and keys (docs/dialect.md 4.4): des | sm4 (sign-on 006).
    algorithm: str = "des"
    # The dialect profile the terminal speaks (posgate.dialect.profiles), "cup" = the baseline.
    dialect: str = "cup"
    # IC public keys / IC parameters changed since its last download (header requirement 4 / 5).
    capk_pending: bool = False
    aid_pending: bool = False


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """One recorded message and its outcome (declines included)."""

    id: int | None
    created_at: datetime
    day: str
    terminal_id: str
    merchant_id: str
    batch_no: str
    stan: str
    mti: str
    operation: str
    processing_code: str | None
    amount: int
    currency: str
    pan_hash: str | None
    pan_masked: str | None
    pan_enc: bytes | None = field(repr=False)
    card_organisation: str | None
    entry_mode: str | None
    response_code: str
    auth_code: str | None
    rrn: str | None
    status: str
    original_id: int | None
    refunded_amount: int
    request_digest: str
    # header (6) + body of the reply as sent, sealed by the store (HostStore.seal_message): it
    # echoes fields 2 and 14, so it is card data at rest (docs/decisions.md S1)
    reply: bytes | None = field(repr=False)
    trace: list[list[str]]
    signed: bool = False
    operator: str | None = None
    source: str = "terminal"
    # Added by the host core (additive): the settlement whose batch upload matched this record.
    settlement_id: int | None = None
    # Routing (issue 13): "issuer" or the upstream link's name; stand-in approval; the STAN and
    # RRN of the message the link sent upstream (copied from IssuerResult by Record).
    route: str = "issuer"
    stand_in: bool = False
    upstream_stan: str | None = None
    upstream_rrn: str | None = None


# Transaction ``status`` values written by the host core:
#   approved | declined | reversed | voided | refunded | partially_refunded | completed | adjusted
#   rejected — refused before anything was executed (the gate: 03, 58, 22, A0; batch 77; a
#             0400 whose amount does not match); a later message with the same TID + batch + STAN + MTI replaces it
#             (update_transaction) instead of being treated as a retransmission (D8).
# ``card_activity`` / ``merchant_activity`` count records whose operation is in
# DEBIT_ACTIVITY_OPERATIONS, response_code "00" and status in ACTIVE_STATUSES.
DEBIT_ACTIVITY_OPERATIONS = frozenset(
    {"sale", "preauth", "completion", "completion_advice", "offline_settlement", "settlement_adjust", "tip_adjust"}
)
ACTIVE_STATUSES = frozenset({"approved", "voided", "refunded", "partially_refunded", "completed", "adjusted"})


@dataclass(frozen=True, slots=True)
class SignOnEntry:
    at: datetime
    day: str
    terminal_id: str
    merchant_id: str
    kind: str  # sign_on | sign_off | refused | reinstated (merchant reinstated after D6; terminal_id "")
    cause: str | None
    operator: str | None
    device_serial: str | None
    key_scheme: str | None
    batch_no: str | None
    stan: str | None
    response_code: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    id: int | None
    at: datetime
    day: str
    terminal_id: str
    merchant_id: str
    batch_no: str
    stan: str
    terminal_totals: dict[str, Any]
    host_totals: dict[str, Any]
    domestic_result: str
    foreign_result: str
    uploaded: int
    upload_end: str | None
    status: str  # balanced | unbalanced | reconciled


@dataclass(frozen=True, slots=True)
class DifferenceRecord:
    settlement_id: int
    terminal_id: str
    merchant_id: str
    batch_no: str
    stan: str | None
    kind: str  # missing_on_host | missing_on_terminal | amount_mismatch
    terminal_amount: int | None
    host_amount: int | None
    pan_masked: str | None
    transaction_id: int | None


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    transaction_id: int
    at: datetime
    source: str  # terminal | makeup
    jbig: bytes | None
    png: bytes | None
    width: int | None
    height: int | None
    receipt_tlv: bytes | None
    captured_by: str | None = None


@dataclass(frozen=True, slots=True)
class RiskRule:
    id: int
    kind: str  # card_velocity | merchant_amount | card_amount
    params: dict[str, Any]
    response_code: str


class HostStore(Protocol):
    # -- acquirer-wide
    def setting(self, key: str, default: str | None = None) -> str | None: ...

    # -- IC parameters and CA public keys (docs/dialect.md 3.12), in key order
    def ic_aids(self) -> Sequence[AidParams]: ...
    def ic_capks(self) -> Sequence[Capk]: ...

    # -- terminals and merchants
    def terminal(self, terminal_id: str) -> TerminalRecord | None: ...
    def update_terminal(self, terminal_id: str, **changes: Any) -> None: ...
    def merchant(self, merchant_id: str) -> MerchantRecord | None: ...
    def update_merchant(self, merchant_id: str, **changes: Any) -> None: ...
    # The latest ``day`` of a register entry of kind ``sign_on`` or ``reinstated`` (D6 counts the
    # days without a sign-on from a reinstatement too: see host/participants/lapse.py).
    def merchant_last_sign_on_day(self, merchant_id: str) -> str | None: ...
    def record_sign_on(self, entry: SignOnEntry) -> None: ...

    # -- transactions
    def transaction(self, txn_id: int) -> TxnRecord | None: ...  # added by the host core
    def find_message(self, terminal_id: str, batch_no: str, stan: str, mti: str) -> TxnRecord | None: ...
    def find_by_stan(self, terminal_id: str, batch_no: str, stan: str) -> Sequence[TxnRecord]: ...
    def find_by_rrn(self, rrn: str) -> Sequence[TxnRecord]: ...
    def children(self, original_id: int) -> Sequence[TxnRecord]: ...
    def insert_transaction(self, txn: TxnRecord) -> int: ...
    def update_transaction(self, txn_id: int, **changes: Any) -> None: ...
    def batch_transactions(self, terminal_id: str, batch_no: str) -> Sequence[TxnRecord]: ...
    def open_batch(self, terminal_id: str, batch_no: str, at: datetime) -> None: ...
    def close_batch(self, terminal_id: str, batch_no: str, at: datetime) -> None: ...

    # -- settlement, batch upload, signatures
    def insert_settlement(self, record: SettlementRecord) -> int: ...
    def update_settlement(self, settlement_id: int, **changes: Any) -> None: ...
    def latest_settlement(self, terminal_id: str, batch_no: str) -> SettlementRecord | None: ...
    def insert_difference(self, record: DifferenceRecord) -> int: ...
    def is_annulled(self, txn_id: int) -> bool: ...
    def settlement_differences(self, settlement_id: int) -> Sequence[DifferenceRecord]: ...
    def insert_signature(self, record: SignatureRecord) -> int: ...

    # -- identifiers unique across host processes
    def next_rrn(self, now: datetime) -> str: ...  # an12, digits
    def next_auth_code(self) -> str: ...  # an6, digits

    # -- risk
    def risk_rules(self) -> Sequence[RiskRule]: ...
    def card_activity(self, pan_hash: str, since: datetime) -> tuple[int, int]: ...  # (count, amount) approved debits
    def merchant_activity(self, merchant_id: str, day: str) -> int: ...  # approved debit amount today
    def record_risk_hit(self, rule_id: int, at: datetime, terminal_id: str, merchant_id: str,
                        pan_masked: str | None, amount: int | None, detail: str) -> None: ...  # fmt: skip

    # -- audit (append-only)
    def audit(self, at: datetime, actor: str, action: str, object_type: str | None = None, object_id: str | None = None,
              merchant_id: str | None = None, before: dict[str, Any] | None = None,
              after: dict[str, Any] | None = None, detail: str | None = None) -> None: ...  # fmt: skip

    # -- card data protection (the store owns the local master key)
    def pan_hash(self, pan: str) -> str: ...
    def encrypt_pan(self, pan: str) -> bytes: ...
    def decrypt_pan(self, blob: bytes) -> str: ...
    def seal_message(self, raw: bytes) -> bytes: ...  # a message kept at rest (TxnRecord.reply)
    def open_message(self, blob: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class IssuerRequest:
    """What the acquirer asks of the issuer. The PIN travels as a block under ``pin_key``
    (the issuer-side zone key); the issuer never sees the terminal's PIK."""

    # balance | debit | credit | hold | release_hold | capture_hold | reverse_debit | reverse_credit
    # added by the host core: force_debit (offline advices: no PIN/limit/balance check),
    # reverse_capture (undo capture_hold: credit ``amount``, hold ``hold_amount`` again),
    # reverse_release (undo release_hold: hold ``amount`` again); issue 13: reverse_hold (undo hold:
    # release ``amount`` without the checks of a release, as every undo)
    kind: str
    pan: str = field(repr=False)
    expiry: str | None
    amount: int
    pin_block: bytes | None = field(default=None, repr=False)  # format 0, encrypted under pin_key
    pin_key: bytes | None = field(default=None, repr=False)
    reference: str = ""  # RRN of the transaction being authorised / reversed
    original_reference: str = ""
    hold_amount: int = 0  # for capture_hold: the amount held by the pre-authorisation
    # Chip (added by issue 14): field 55 of the request (the card's ARQC and the data it signed)
    # and the PAN sequence number (field 23, tag 5F34); the issuer checks the cryptogram.
    icc: bytes | None = field(default=None, repr=False)
    pan_seq: str = ""
    # Fallback rules (issue 14, docs/decisions.md C4): the card was read from its stripe (field
    # 22 = 02x), and the terminal says the chip was tried and failed (60.5 = 2).
    swiped: bool = False
    fallback: bool = False
    # Routing (issue 13): what an upstream network needs besides the card: where the card was
    # presented, and the acquirer's own message of the original (reversals, completions).
    terminal_id: str = ""
    merchant_id: str = ""
    stan: str = ""  # the terminal's STAN (field 11): sent upstream as is, with the RRN it is unique
    mcc: str = ""
    entry_mode: str = ""  # field 22 (a scanned payment code: 03x)
    original_upstream_stan: str = ""
    # Who authorised the original (TxnRecord.route): a void, refund, completion or reversal goes
    # where the original went, even if the routing table changed since. "" = no original.
    original_route: str = ""


@dataclass(frozen=True, slots=True)
class IssuerResult:
    response_code: str
    auth_code: str | None = None
    balance: int | None = None  # available balance after the operation (for 54)
    organisation: str = "CUP"  # 63.1 of the reply
    issuer_bank: str = ""  # 44.1
    icc: bytes | None = None  # field 55 of the reply (tag 91: ARPC + ARC), chip only
    # Routing (issue 13): who answered — "issuer" (built-in) or an upstream link's name — whether
    # it was the acquirer's stand-in, and the STAN/RRN of the message sent upstream.
    route: str = "issuer"
    stand_in: bool = False
    upstream_stan: str | None = None
    upstream_rrn: str | None = None


class Issuer(Protocol):
    # Added by the host core (additive): the PIN zone key shared by acquirer and issuer; the
    # pipeline translates field 52 from the terminal's PIK to this key (never stores it).
    @property
    def zone_key(self) -> bytes: ...

    def authorize(self, request: IssuerRequest, now: datetime) -> IssuerResult: ...


@dataclass(frozen=True, slots=True)
class CardRecord:
    """A card held by the built-in issuer (table ``cards``). Added by the host core."""

    id: int
    pan_hash: str
    pan_masked: str
    expiry: str  # YYMM
    kind: str  # debit | credit
    organisation: str  # CUP | VIS ...
    chip: bool
    state: str  # active | lost | stolen | restricted | blocked
    balance: int  # fen; credit cards: available credit
    held: int
    per_txn_limit: int | None
    pin_verifier: str = field(repr=False)
    pin_tries: int = 0
    pin_tries_day: str | None = None
    # Chip (issue 14): the issuer master keys IMK-AC ‖ IMK-SMI ‖ IMK-SMC, encrypted under the local
    # master key (never clear at rest), and the highest ATC seen in a verified cryptogram.
    icc_keys_enc: bytes | None = field(default=None, repr=False)
    icc_atc: int | None = None


class IssuerStore(Protocol):
    """What the built-in issuer reads and writes (added by the host core). Same unit of work
    as the :class:`HostStore`; the SQL store implements both on one connection."""

    def card(self, pan_hash: str) -> CardRecord | None: ...
    def update_card(self, pan_hash: str, **changes: Any) -> None: ...
    def pan_hash(self, pan: str) -> str: ...
    def pin_verifier(self, pan: str, pin: str) -> str: ...  # HMAC(local master key, pan || pin)
    def next_auth_code(self) -> str: ...
    def icc_master_keys(self, blob: bytes) -> bytes: ...  # decrypt CardRecord.icc_keys_enc (48 bytes)


@dataclass(frozen=True)
class Env:
    """What the core may know of the world: passed in, never read from globals."""

    now: Callable[[], datetime]  # aware UTC datetime
    randbytes: Callable[[int], bytes]
    timezone: str = "Asia/Shanghai"
    institution_id: str = "00049990"  # field 32
    currency: str = "156"
    lapse_days: int = 3  # D6
    resign_after_mac_failures: int = 3
