"""Matching the network's clearing file against the acquirer's transactions (sans-IO).

Both sides are plain values: the file's :class:`~posgate.clearing.file.ClearingRecord` s and the
acquirer's :class:`AcquirerTxn` s of the same business date (which ones is the caller's choice:
:mod:`posgate.clearing.service` reads them through a query function). A record and a transaction
are the same message when their key is equal: RRN (field 37), terminal (41) and STAN (11).

Outcomes, per record or transaction:

* ``matched``: same key, the same amount, both count (approved and not reversed) — or neither
  counts: both agree nothing is owed;
* ``amount_mismatch``: same key, both count, the amounts differ;
* ``response_mismatch``: same key, one side counts and the other does not (we declined or
  reversed what the network approved: the cardholder was charged and the merchant is not paid;
  or the reverse);
* ``missing_ours``: the network cleared it, we have no transaction with that key;
* ``missing_theirs``: we approved it, the network's file lacks it (the merchant is paid for
  money the network will not send);
* ``duplicate``: the file holds the key more than once (the network would charge twice);
* ``no_effect``: a record the network did not approve and we do not have (nothing owed).

Every outcome but ``matched`` and ``no_effect`` is a difference for the support desk. Each
carries ``effect``: the signed amount (fen) by which the merchant's due changes if the
acquirer's ledger is made to agree with the network (positive: the merchant is owed more).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from posgate.clearing.file import ClearingRecord
from posgate.dialect.operations import OPERATIONS
from posgate.domain.response_codes import APPROVED

OUTCOMES = (
    "matched",
    "amount_mismatch",
    "response_mismatch",
    "missing_ours",
    "missing_theirs",
    "duplicate",
    "no_effect",
)
DIFFERENCES = ("amount_mismatch", "response_mismatch", "missing_ours", "missing_theirs", "duplicate")
DEAD = ("reversed", "declined")

Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class AcquirerTxn:
    """The acquirer's side of a message, as much of a ``transactions`` row as matching needs."""

    id: int
    terminal_id: str
    merchant_id: str
    stan: str
    rrn: str
    amount: int
    response_code: str
    status: str
    operation: str
    processing_code: str = ""
    pan_masked: str = ""

    @property
    def counts(self) -> bool:
        return self.response_code in APPROVED and self.status not in DEAD

    @property
    def side(self) -> str:
        op = OPERATIONS.get(self.operation)
        if op is not None and op.settlement:
            return op.settlement
        return "credit" if self.processing_code.startswith("20") else "debit"

    @property
    def key(self) -> Key:
        return (self.rrn, self.terminal_id, self.stan)


@dataclass(frozen=True, slots=True)
class Outcome:
    outcome: str
    record: ClearingRecord | None  # the network's record (None: missing on theirs)
    index: int | None  # its position in the file's records
    txn: AcquirerTxn | None  # ours (None: missing on ours, duplicate, no effect)
    effect: int = 0

    @property
    def is_difference(self) -> bool:
        return self.outcome in DIFFERENCES


def _sign(side: str) -> int:
    return 1 if side == "debit" else -1


def _counts(r: ClearingRecord) -> bool:
    return r.response_code in APPROVED


def _pair(i: int, r: ClearingRecord, t: AcquirerTxn) -> Outcome:
    theirs, ours = _counts(r), t.counts
    if theirs and ours:
        if r.amount == t.amount:
            return Outcome("matched", r, i, t)
        return Outcome("amount_mismatch", r, i, t, _sign(r.side) * (r.amount - t.amount))
    if theirs:
        return Outcome("response_mismatch", r, i, t, _sign(r.side) * r.amount)
    if ours:
        return Outcome("response_mismatch", r, i, t, -_sign(t.side) * t.amount)
    return Outcome("matched", r, i, t)


def match(records: Sequence[ClearingRecord], txns: Iterable[AcquirerTxn]) -> list[Outcome]:
    """One outcome per file record (in file order), then one per unmatched transaction of ours
    that counts (by id)."""
    ours: dict[Key, list[AcquirerTxn]] = defaultdict(list)
    for t in txns:
        ours[t.key].append(t)
    for group in ours.values():  # a key held twice on our side: the counting row pairs first
        group.sort(key=lambda t: (not t.counts, t.id))
    seen: dict[Key, int] = defaultdict(int)
    out: list[Outcome] = []
    for i, r in enumerate(records):
        n = seen[r.key]
        seen[r.key] = n + 1
        group = ours.get(r.key, [])
        if n < len(group):
            out.append(_pair(i, r, group[n]))
        elif n > 0:
            out.append(Outcome("duplicate", r, i, None))
        elif _counts(r):
            out.append(Outcome("missing_ours", r, i, None, _sign(r.side) * r.amount))
        else:
            out.append(Outcome("no_effect", r, i, None))
    rest = [t for key, group in ours.items() for t in group[seen.get(key, 0) :] if t.counts]
    for t in sorted(rest, key=lambda t: t.id):
        out.append(Outcome("missing_theirs", None, None, t, -_sign(t.side) * t.amount))
    return out


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    c = dict.fromkeys(OUTCOMES, 0)
    for o in outcomes:
        c[o.outcome] += 1
    return c
