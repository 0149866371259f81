"""An in-memory :class:`~posgate.host.ports.HostStore` and
:class:`~posgate.host.ports.IssuerStore` (dicts), for unit tests, the pair harness and the
embedded demo; and :func:`demo_memory_store`, which provisions exactly docs/demo-data.md.

Theory of operation: every record lives in a dict keyed like the SQL store's unique indexes
(terminal id, merchant id, TID + batch + STAN + MTI, pan hash...), with secondary indexes for
the lookups the pipeline makes per request, so that a request costs O(1) dict operations
whatever the history. Records are frozen dataclasses replaced on update; columns the SQL
schema has but the record types do not (``suspended_at``, ``last_sign_on_at``...) are kept in
per-row ``extra`` dicts, so both stores accept the same ``update_*`` calls.

Must behave exactly like the SQL store (tests/host/store_contract.py holds both to it). Must
never keep a clear PAN (``encrypt_pan`` and ``seal_message`` are keyed XOR streams — stand-ins
for the SQL store's AES, good enough for memory that dies with the process) or a PIN (``pin_verifier`` is an HMAC).
No transactions: there is nothing to roll back in memory, which is why participants write
only once their decision is taken.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from hashlib import sha256
from typing import Any

from posgate.dialect.ic_params import DEMO_AIDS, UNIONPAY_TEST_CAPKS, AidParams, Capk
from posgate.domain.chip import DEMO_CHIP_CARDS
from posgate.domain.masking import mask_pan
from posgate.host.ports import (
    ACTIVE_STATUSES,
    DEBIT_ACTIVITY_OPERATIONS,
    CardRecord,
    DifferenceRecord,
    Env,
    MerchantRecord,
    RiskRule,
    SettlementRecord,
    SignatureRecord,
    SignOnEntry,
    TerminalRecord,
    TxnRecord,
)


def _names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


_TERMINAL, _MERCHANT, _TXN, _SETTLEMENT, _CARD = (_names(c) for c in (
    TerminalRecord, MerchantRecord, TxnRecord, SettlementRecord, CardRecord))  # fmt: skip


class DuplicateKeyError(ValueError):
    """An insert that violates a unique key (the SQL store raises its IntegrityError)."""


class MemoryStore:
    """HostStore + IssuerStore in dicts. Not thread-safe (one event loop owns it)."""

    def __init__(self, secret: bytes = b"posgate-memory-store") -> None:
        self._secret = secret
        self.settings: dict[str, str] = {}
        self.merchants: dict[str, MerchantRecord] = {}
        self.terminals: dict[str, TerminalRecord] = {}
        self.extra: dict[tuple[str, str], dict[str, Any]] = {}  # (table, key) → columns without a record field
        self.sign_ons: list[SignOnEntry] = []
        self._last_sign_on: dict[str, str] = {}  # merchant id → last sign-on day
        self.txns: dict[int, TxnRecord] = {}
        self._by_key: dict[tuple[str, str, str, str], int] = {}
        self._by_stan: dict[tuple[str, str, str], list[int]] = {}
        self._by_rrn: dict[str, list[int]] = {}
        self._by_batch: dict[tuple[str, str], list[int]] = {}
        self._by_pan: dict[str, list[int]] = {}
        self._children: dict[int, list[int]] = {}
        self.batches: dict[tuple[str, str], dict[str, Any]] = {}
        self.settlements: dict[int, SettlementRecord] = {}
        self._latest: dict[tuple[str, str], int] = {}
        self.differences: list[DifferenceRecord] = []
        self.signatures: list[SignatureRecord] = []
        self.rules: list[RiskRule] = []
        self.risk_hits: list[dict[str, Any]] = []
        self.audit_log: list[dict[str, Any]] = []
        self.cards: dict[str, CardRecord] = {}
        self.aids: dict[str, AidParams] = {}
        self.capks: dict[tuple[str, str], Capk] = {}
        self._rrn = 0
        self._auth = 0

    def __repr__(self) -> str:
        return f"MemoryStore({len(self.terminals)} terminals, {len(self.txns)} transactions)"

    # -- acquirer-wide
    def setting(self, key: str, default: str | None = None) -> str | None:
        return self.settings.get(key, default)

    # -- IC parameters and CA public keys
    def ic_aids(self) -> Sequence[AidParams]:
        return [self.aids[k] for k in sorted(self.aids)]

    def ic_capks(self) -> Sequence[Capk]:
        return [self.capks[k] for k in sorted(self.capks)]

    def put_ic_params(self, aids: Sequence[AidParams] = (), capks: Sequence[Capk] = ()) -> None:
        """Add or replace AIDs and CAPKs (checked) and flag every terminal to download them,
        as ``posgate admin`` does on the SQL store."""
        for a in aids:
            a = a.checked()
            self.aids[a.aid] = a
        for c in capks:
            c = c.checked()
            self.capks[c.key] = c
        for tid in list(self.terminals):
            self.update_terminal(tid, **({"aid_pending": True} if aids else {}),
                                 **({"capk_pending": True} if capks else {}))  # fmt: skip

    # -- terminals and merchants
    def terminal(self, terminal_id: str) -> TerminalRecord | None:
        return self.terminals.get(terminal_id)

    def update_terminal(self, terminal_id: str, **changes: Any) -> None:
        t = self.terminals[terminal_id]
        self.terminals[terminal_id] = self._apply(t, _TERMINAL, ("terminal", terminal_id), changes)

    def merchant(self, merchant_id: str) -> MerchantRecord | None:
        return self.merchants.get(merchant_id)

    def update_merchant(self, merchant_id: str, **changes: Any) -> None:
        m = self.merchants[merchant_id]
        self.merchants[merchant_id] = self._apply(m, _MERCHANT, ("merchant", merchant_id), changes)

    def merchant_last_sign_on_day(self, merchant_id: str) -> str | None:
        return self._last_sign_on.get(merchant_id)

    def record_sign_on(self, entry: SignOnEntry) -> None:
        self.sign_ons.append(entry)
        if entry.kind in ("sign_on", "reinstated"):
            last = self._last_sign_on.get(entry.merchant_id)
            if last is None or entry.day > last:
                self._last_sign_on[entry.merchant_id] = entry.day

    # -- transactions
    def transaction(self, txn_id: int) -> TxnRecord | None:
        return self.txns.get(txn_id)

    def find_message(self, terminal_id: str, batch_no: str, stan: str, mti: str) -> TxnRecord | None:
        i = self._by_key.get((terminal_id, batch_no, stan, mti))
        return None if i is None else self.txns[i]

    def find_by_stan(self, terminal_id: str, batch_no: str, stan: str) -> Sequence[TxnRecord]:
        return [self.txns[i] for i in self._by_stan.get((terminal_id, batch_no, stan), ())]

    def find_by_rrn(self, rrn: str) -> Sequence[TxnRecord]:
        return [self.txns[i] for i in self._by_rrn.get(rrn, ())]

    def children(self, original_id: int) -> Sequence[TxnRecord]:
        return [self.txns[i] for i in self._children.get(original_id, ())]

    def insert_transaction(self, txn: TxnRecord) -> int:
        key = (txn.terminal_id, txn.batch_no, txn.stan, txn.mti)
        if key in self._by_key:
            raise DuplicateKeyError("transactions: terminal, batch, STAN and MTI already recorded")
        i = len(self.txns) + 1
        self.txns[i] = replace(txn, id=i, trace=[list(step) for step in txn.trace])
        self._by_key[key] = i
        self._by_stan.setdefault(key[:3], []).append(i)
        self._by_batch.setdefault((txn.terminal_id, txn.batch_no), []).append(i)
        if txn.rrn:
            self._by_rrn.setdefault(txn.rrn, []).append(i)
        if txn.pan_hash:
            self._by_pan.setdefault(txn.pan_hash, []).append(i)
        if txn.original_id is not None:
            self._children.setdefault(txn.original_id, []).append(i)
        return i

    def update_transaction(self, txn_id: int, **changes: Any) -> None:
        old = self.txns[txn_id]
        if "trace" in changes:
            changes["trace"] = [list(step) for step in changes["trace"]]
        new = self._apply(old, _TXN, ("transaction", str(txn_id)), changes)
        self.txns[txn_id] = new
        if new.rrn != old.rrn and new.rrn:
            self._by_rrn.setdefault(new.rrn, []).append(txn_id)
        if new.pan_hash != old.pan_hash and new.pan_hash:
            self._by_pan.setdefault(new.pan_hash, []).append(txn_id)
        if new.original_id != old.original_id and new.original_id is not None:
            self._children.setdefault(new.original_id, []).append(txn_id)

    def batch_transactions(self, terminal_id: str, batch_no: str) -> Sequence[TxnRecord]:
        return [self.txns[i] for i in self._by_batch.get((terminal_id, batch_no), ())]

    def open_batch(self, terminal_id: str, batch_no: str, at: datetime) -> None:
        self.batches.setdefault((terminal_id, batch_no), {"opened_at": at, "closed_at": None, "status": "open"})

    def close_batch(self, terminal_id: str, batch_no: str, at: datetime) -> None:
        b = self.batches.setdefault((terminal_id, batch_no), {"opened_at": at, "closed_at": None, "status": "open"})
        b.update(closed_at=at, status="closed")

    # -- settlement, batch upload, signatures
    def insert_settlement(self, record: SettlementRecord) -> int:
        i = len(self.settlements) + 1
        self.settlements[i] = replace(record, id=i)
        self._latest[(record.terminal_id, record.batch_no)] = i
        return i

    def update_settlement(self, settlement_id: int, **changes: Any) -> None:
        s = self.settlements[settlement_id]
        self.settlements[settlement_id] = self._apply(s, _SETTLEMENT, ("settlement", str(settlement_id)), changes)

    def latest_settlement(self, terminal_id: str, batch_no: str) -> SettlementRecord | None:
        i = self._latest.get((terminal_id, batch_no))
        return None if i is None else self.settlements[i]

    def insert_difference(self, record: DifferenceRecord) -> int:
        self.differences.append(record)
        return len(self.differences)

    def is_annulled(self, txn_id: int) -> bool:
        return any(r.original_id == txn_id and r.operation == "annulment" and r.response_code == "00"
                   for r in self.txns.values())  # fmt: skip

    def settlement_differences(self, settlement_id: int) -> Sequence[DifferenceRecord]:
        return [d for d in self.differences if d.settlement_id == settlement_id]

    def insert_signature(self, record: SignatureRecord) -> int:
        self.signatures.append(record)
        return len(self.signatures)

    # -- identifiers
    def next_rrn(self, now: datetime) -> str:
        self._rrn += 1
        return f"{self._rrn:012d}"

    def next_auth_code(self) -> str:
        self._auth = self._auth % 999999 + 1
        return f"{self._auth:06d}"

    # -- risk
    def risk_rules(self) -> Sequence[RiskRule]:
        return self.rules

    def add_risk_rule(self, kind: str, params: dict[str, Any], response_code: str) -> RiskRule:
        rule = RiskRule(len(self.rules) + 1, kind, params, response_code)
        self.rules.append(rule)
        return rule

    def _debits(self, ids: Sequence[int]) -> list[TxnRecord]:
        out = []
        for i in ids:
            r = self.txns[i]
            if r.operation in DEBIT_ACTIVITY_OPERATIONS and r.response_code == "00" and r.status in ACTIVE_STATUSES:
                out.append(r)
        return out

    def card_activity(self, pan_hash: str, since: datetime) -> tuple[int, int]:
        rows = [r for r in self._debits(self._by_pan.get(pan_hash, ())) if r.created_at >= since]
        return len(rows), sum(r.amount for r in rows)

    def merchant_activity(self, merchant_id: str, day: str) -> int:
        ids = [i for i, r in self.txns.items() if r.merchant_id == merchant_id and r.day == day]
        return sum(r.amount for r in self._debits(ids))

    def record_risk_hit(self, rule_id: int, at: datetime, terminal_id: str, merchant_id: str,
                        pan_masked: str | None, amount: int | None, detail: str) -> None:  # fmt: skip
        self.risk_hits.append({"rule_id": rule_id, "at": at, "terminal_id": terminal_id, "merchant_id": merchant_id,
                               "pan_masked": pan_masked, "amount": amount, "detail": detail})  # fmt: skip

    # -- audit
    def audit(self, at: datetime, actor: str, action: str, object_type: str | None = None, object_id: str | None = None,
              merchant_id: str | None = None, before: dict[str, Any] | None = None,
              after: dict[str, Any] | None = None, detail: str | None = None) -> None:  # fmt: skip
        self.audit_log.append({"at": at, "actor": actor, "action": action, "object_type": object_type,
                               "object_id": object_id, "merchant_id": merchant_id, "before": before,
                               "after": after, "detail": detail})  # fmt: skip

    # -- card data protection
    def pan_hash(self, pan: str) -> str:
        return hmac.new(self._secret, pan.encode("ascii"), sha256).hexdigest()

    def _stream(self, n: int, purpose: bytes = b"pan") -> bytes:
        return (sha256(self._secret + purpose).digest() * (n // 32 + 1))[:n]

    def encrypt_pan(self, pan: str) -> bytes:
        raw = pan.encode("ascii")
        return bytes(a ^ b for a, b in zip(raw, self._stream(len(raw)), strict=True))

    def decrypt_pan(self, blob: bytes) -> str:
        return bytes(a ^ b for a, b in zip(blob, self._stream(len(blob)), strict=True)).decode("ascii")

    def seal_message(self, raw: bytes) -> bytes:
        return bytes(a ^ b for a, b in zip(raw, self._stream(len(raw), b"message"), strict=True))

    def open_message(self, blob: bytes) -> bytes:
        return self.seal_message(blob)  # XOR: its own inverse

    # -- IssuerStore
    def card(self, pan_hash: str) -> CardRecord | None:
        return self.cards.get(pan_hash)

    def update_card(self, pan_hash: str, **changes: Any) -> None:
        self.cards[pan_hash] = self._apply(self.cards[pan_hash], _CARD, ("card", pan_hash), changes)

    def icc_master_keys(self, blob: bytes) -> bytes:
        return bytes(a ^ b for a, b in zip(blob, self._stream(len(blob), b"icc"), strict=True))

    def pin_verifier(self, pan: str, pin: str) -> str:
        return hmac.new(self._secret, f"{pan}|{pin}".encode("ascii"), sha256).hexdigest()

    # -- provisioning (what the CLI / console do on the SQL store)
    def add_merchant(self, merchant_id: str, name: str, name_en: str = "", mcc: str = "5999",
                     fee_rate_bp: int = 60, status: str = "active") -> MerchantRecord:  # fmt: skip
        m = MerchantRecord(len(self.merchants) + 1, merchant_id, name, name_en, mcc, fee_rate_bp, status)
        self.merchants[merchant_id] = m
        return m

    def add_terminal(self, terminal_id: str, merchant_id: str, tmk: bytes, device_serial: str | None = None,
                     batch_no: str = "000001", at: datetime | None = None, **kw: Any) -> TerminalRecord:  # fmt: skip
        values: dict[str, Any] = dict(
            id=len(self.terminals) + 1, terminal_id=terminal_id, merchant_id=merchant_id, tmk=tmk,
            device_serial=device_serial, pending_serial=None, approved_serial=None, status="active",
            batch_no=batch_no, signed_on_day=None, signed_off=False, operator=None, key_scheme=None, pik=None,
            mak=None, tdk=None, mac_algorithm="cup", mac_failures=0, resign_requested=False, resign_reason=None,
            params={}, params_pending=False,
        )  # fmt: skip
        values.update(kw)
        t = TerminalRecord(**values)
        self.terminals[terminal_id] = t
        if at is not None:
            self.open_batch(terminal_id, batch_no, at)
        return t

    def add_card(self, pan: str, expiry: str, balance: int, *, pin: str = "123456", kind: str = "debit",
                 organisation: str = "CUP", chip: bool = False, state: str = "active",
                 per_txn_limit: int | None = None, icc_keys: bytes | None = None) -> CardRecord:  # fmt: skip
        """``icc_keys``: a chip card's IMK-AC ‖ IMK-SMI ‖ IMK-SMC, kept sealed (like the PANs)."""
        h = self.pan_hash(pan)
        sealed = self.icc_master_keys(icc_keys) if icc_keys is not None else None  # XOR: its own inverse
        c = CardRecord(len(self.cards) + 1, h, mask_pan(pan), expiry, kind, organisation, chip, state, balance, 0,
                       per_txn_limit, self.pin_verifier(pan, pin), icc_keys_enc=sealed)  # fmt: skip
        self.cards[h] = c
        return c

    def card_by_pan(self, pan: str) -> CardRecord | None:
        return self.cards.get(self.pan_hash(pan))

    # --
    def _apply(self, rec: Any, names: frozenset[str], key: tuple[str, str], changes: dict[str, Any]) -> Any:
        known = {k: v for k, v in changes.items() if k in names}
        other = {k: v for k, v in changes.items() if k not in names}
        if other:
            self.extra.setdefault(key, {}).update(other)
        return replace(rec, **known) if known else rec


# ----------------------------------------------------------------------------- demo data
DEMO_MERCHANTS = (
    ("898100012340001", "演示便利店", "Demo Mart", "5411", 60),
    ("898100012340002", "演示餐厅", "Demo Bistro", "5812", 38),
)
DEMO_TERMINALS = (
    ("10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001"),
    ("10000002", "898100012340001", "31313131313131313232323232323232", "DEMO0002"),
    ("20000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003"),
)
# The national-cryptography (国密) terminal: SM4 TMK, sign-on 006 (docs/dialect.md 4.4).
DEMO_SM4_TERMINALS = (("40000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0004"),)
# PAN, expiry, balance (fen), kind, organisation, chip, state, per-transaction limit (fen)
DEMO_CARDS = (
    ("6212142000000000012", "3012", 10_000_000, "debit", "CUP", False, "active", None),
    ("6217000000000000020", "3012", 1_000, "debit", "CUP", False, "active", None),
    ("6217000000000000038", "2001", 500_000, "debit", "CUP", False, "active", None),  # expired
    ("6217000000000000046", "3012", 500_000, "debit", "CUP", False, "lost", None),
    ("6217000000000000053", "3012", 500_000, "debit", "CUP", False, "stolen", None),
    ("6217000000000000061", "3012", 500_000, "debit", "CUP", False, "restricted", None),
    ("6217000000000000079", "3012", 10_000_000, "debit", "CUP", False, "active", 50_000),
    ("6225880000000000010", "3012", 5_000_000, "credit", "CUP", True, "active", None),
    ("4761730000000011", "3012", 10_000_000, "debit", "VIS", False, "active", None),
)
DEMO_PIN = "123456"
# Scan-to-pay demo payment codes (docs/decisions.md Q3; the same as posgate.store.demo.QR_CODES).
DEMO_QR_CODES = (
    ("6288000000000000011", "3012", 10_000_000, "debit", "CUP", False, "active", None),  # approved
    ("6288000000000000029", "3012", 10_000_000, "debit", "CUP", False, "password", None),  # 09, then 00
    ("6288000000000000037", "3012", 0, "debit", "CUP", False, "active", None),  # 51
    ("6288000000000000045", "2001", 10_000_000, "debit", "CUP", False, "active", None),  # expired: 54
    ("134567890123456789", "3012", 10_000_000, "debit", "CUP", False, "active", None),  # WeChat Pay style
    ("281234567890123456", "3012", 10_000_000, "debit", "CUP", False, "active", None),  # Alipay style
)


def demo_memory_store(env: Env) -> MemoryStore:
    """A MemoryStore provisioned with exactly the merchants, terminals and cards of docs/demo-data.md."""
    store = MemoryStore()
    store.settings.update(institution_id=env.institution_id, timezone=env.timezone, currency=env.currency)
    now = env.now()
    for mid, name, name_en, mcc, fee in DEMO_MERCHANTS:
        store.add_merchant(mid, name, name_en, mcc, fee)
    for tid, mid, tmk, serial in DEMO_TERMINALS:
        store.add_terminal(tid, mid, bytes.fromhex(tmk), serial, at=now)
    for tid, mid, tmk, serial in DEMO_SM4_TERMINALS:
        store.add_terminal(tid, mid, bytes.fromhex(tmk), serial, at=now, algorithm="sm4")
    for pan, expiry, balance, kind, org, chip, state, limit in (*DEMO_CARDS, *DEMO_QR_CODES):
        chip_keys = DEMO_CHIP_CARDS.get(pan)
        store.add_card(pan, expiry, balance, pin=DEMO_PIN, kind=kind, organisation=org, chip=chip, state=state,
                       per_txn_limit=limit, icc_keys=chip_keys.keys if chip_keys else None)  # fmt: skip
    # IC parameters (docs/demo-data.md): terminals fetch them at their first sign-on.
    store.aids.update({a.aid: a for a in DEMO_AIDS})
    store.capks.update({c.key: c for c in UNIONPAY_TEST_CAPKS})
    return store
