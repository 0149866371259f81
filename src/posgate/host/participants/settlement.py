"""Settlement (9.1, 9.2, D10): the host's totals of the terminal's batch against field 48.

What counts (9.1): debit = sale, completion (request and advice), offline settlement / adjust /
tip; credit = sale void, refund, completion void. Only approved records, not ``reversed``
(a reversal takes the original out) and not ``adjusted`` (an adjust or tip advice replaces
its original). A voided sale stays in the debits and its void counts as a credit. Domestic
when the card organisation is ``CUP``, foreign otherwise.

Per side the flag is ``1`` when amounts and counts agree, ``2`` when they do not; ``3`` (and
39 = ``77``, header requirement 3) when 60.2 is not the host's open batch. The batch is then
closed and batch + 1 opened (the terminal moves to it after its batch upload, 10). The 0510
carries 48 (the terminal's totals with the flags) and 39 = ``00``. A repeated 0500 for a
batch already settled with the same STAN gets the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from posgate.dialect.fields import SettlementTotals, SideTotals
from posgate.dialect.operations import OPERATIONS
from posgate.host.context import Context
from posgate.host.participants.originals import mmdd
from posgate.host.pipeline import Participant
from posgate.host.ports import SettlementRecord, TxnRecord
from posgate.iso8583 import CodecError

EXCLUDED = frozenset({"reversed", "adjusted", "rejected", "declined"})
SIDE = {name: op.settlement for name, op in OPERATIONS.items() if op.settlement}


def counts(r: TxnRecord) -> str:
    """``"debit"``, ``"credit"`` or ``""``: how a record counts in the totals."""
    if r.response_code != "00" or r.status in EXCLUDED:
        return ""
    return SIDE.get(r.operation, "")


def is_domestic(r: TxnRecord) -> bool:
    return (r.card_organisation or "CUP").strip() == "CUP"


def host_totals(rows: Iterable[TxnRecord]) -> SettlementTotals:
    acc = [[0, 0, 0, 0], [0, 0, 0, 0]]  # domestic, foreign: debit amt, debit n, credit amt, credit n
    for r in rows:
        side = counts(r)
        if not side:
            continue
        a = acc[0 if is_domestic(r) else 1]
        i = 0 if side == "debit" else 2
        a[i] += r.amount
        a[i + 1] += 1
    d, f = acc
    return SettlementTotals(SideTotals(d[0], d[1], d[2], d[3]), SideTotals(f[0], f[1], f[2], f[3]))


def same(a: SideTotals, b: SideTotals) -> bool:
    return (a.debit_amount, a.debit_count, a.credit_amount, a.credit_count) == (
        b.debit_amount, b.debit_count, b.credit_amount, b.credit_count)  # fmt: skip


def totals_dict(t: SettlementTotals) -> dict[str, Any]:
    def side(s: SideTotals) -> dict[str, Any]:
        return {"debit_amount": s.debit_amount, "debit_count": s.debit_count, "credit_amount": s.credit_amount,
                "credit_count": s.credit_count, "flag": s.flag}  # fmt: skip

    return {"domestic": side(t.domestic), "foreign": side(t.foreign)}


def totals_from_dict(d: dict[str, Any]) -> SettlementTotals:
    return SettlementTotals(SideTotals(**d["domestic"]), SideTotals(**d["foreign"]))


def with_flags(t: SettlementTotals, domestic: str, foreign: str) -> SettlementTotals:
    d, f = t.domestic, t.foreign
    return SettlementTotals(SideTotals(d.debit_amount, d.debit_count, d.credit_amount, d.credit_count, domestic),
                            SideTotals(f.debit_amount, f.debit_count, f.credit_amount, f.credit_count, foreign))  # fmt: skip


def next_batch(batch_no: str) -> str:
    """000001..999999, wrapping to 000001 (10)."""
    return f"{int(batch_no) % 999999 + 1:06d}"


class Settle(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        try:
            terminal = SettlementTotals.parse(msg.text(48))
        except CodecError as exc:
            return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
        batch = ctx.batch_no
        ctx.reply[15] = mmdd(ctx.day)
        latest = ctx.store.latest_settlement(t.terminal_id, batch)
        if latest is not None and latest.stan == ctx.stan:
            ctx.reply[48] = with_flags(terminal, latest.domestic_result, latest.foreign_result).format()
            ctx.response_code = "00"
            return ctx.done(self.name, f"batch {batch} already settled: same answer")
        if batch != t.batch_no:
            ctx.reply[48] = with_flags(terminal, "3", "3").format()
            ctx.require("3")
            return ctx.decline(self.name, "77", f"terminal batch {batch}, host batch {t.batch_no}")
        host = host_totals(ctx.store.batch_transactions(t.terminal_id, batch))
        dom = "1" if same(terminal.domestic, host.domestic) else "2"
        fgn = "1" if same(terminal.foreign, host.foreign) else "2"
        status = "balanced" if dom == fgn == "1" else "unbalanced"
        ctx.store.insert_settlement(SettlementRecord(
            id=None, at=ctx.now, day=ctx.day, terminal_id=t.terminal_id, merchant_id=t.merchant_id,
            batch_no=batch, stan=ctx.stan, terminal_totals=totals_dict(terminal), host_totals=totals_dict(host),
            domestic_result=dom, foreign_result=fgn, uploaded=0, upload_end=None, status=status,
        ))  # fmt: skip
        new_batch = next_batch(batch)
        ctx.store.close_batch(t.terminal_id, batch, ctx.now)
        ctx.store.open_batch(t.terminal_id, new_batch, ctx.now)
        ctx.store.update_terminal(t.terminal_id, batch_no=new_batch)
        ctx.reply[48] = with_flags(terminal, dom, fgn).format()
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"batch {batch} {status} (domestic {dom}, foreign {fgn}); batch {new_batch} open")
