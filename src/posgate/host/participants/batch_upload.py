"""Batch upload after settlement (9.3, D11), reconciled one message at a time against the
settlement of the batch in 60.2 (``12`` when that batch was never settled).

* ``00``/``201``: field 48 lists up to 8 transactions (card-org flag, STAN, PAN, amount). Each
  is matched by STAN to a record that counts in the totals: found with the same amount →
  marked with the settlement (``settlement_id``); not found → difference
  ``missing_on_host``; found with another amount → difference ``amount_mismatch``.
* ``00``/``203``, ``204``, ``205`` (IC uploads): counted, nothing to reconcile in magstripe
  terms; a 203/205 carrying a TC (field 55) is checked by the issuer first (issue 14): a TC
  that does not verify is answered ``59`` and not counted.
* an offline advice re-sent with its own 60.1 and 60.3 = ``000`` (D11): matched by STAN when
  the host already has it; otherwise processed now like the 0220 would have been (posted to
  the issuer, recorded with MTI 0320 and source ``batch_upload``) — "recorded if new".
* ``00``/``207`` or ``202`` (end, 48 = count n4): for each side the settlement found
  unbalanced, every counted host record not matched by the upload is a difference
  ``missing_on_terminal``; the host totals are computed again (advices recorded during the
  upload now count) and a settlement whose totals now agree becomes ``reconciled``. The end
  code is recorded as sent (207 balanced / 202 not); the 0330 carries 48 = the count.

One difference per transaction and settlement: a host record the upload named with another
amount is an ``amount_mismatch`` and nothing else (not also ``missing_on_terminal`` at the end),
and a re-sent upload or end message (the terminal retries when a reply is lost) finds the
differences already on file and records none twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from posgate.dialect.fields import BatchUploadEntries, batch_end_count
from posgate.dialect.operations import by_type_code
from posgate.domain.masking import mask_pan
from posgate.host.context import ABORTED, PREPARED, Context
from posgate.host.participants.settlement import (
    counts,
    host_totals,
    is_domestic,
    same,
    totals_dict,
    totals_from_dict,
)
from posgate.host.pipeline import Participant, run
from posgate.host.ports import DifferenceRecord, IssuerRequest, SettlementRecord
from posgate.iso8583 import TLV, CodecError


class ReconcileUpload(Participant):
    def __init__(self, advice_groups: Mapping[str, Sequence[Participant]]) -> None:
        self.advice_groups = advice_groups

    def prepare(self, ctx: Context) -> str:
        t, f60, msg = ctx.terminal, ctx.f60, ctx.msg
        assert t is not None and f60 is not None and msg is not None
        s = ctx.store.latest_settlement(t.terminal_id, ctx.batch_no)
        if s is None or s.id is None:
            return ctx.decline(self.name, "12", f"batch {ctx.batch_no} has not been settled")
        try:
            if f60.type_code != "00":
                return self._advice(ctx, s)
            if f60.nmic == "201":
                return self._entries(ctx, s)
            if f60.nmic in ("207", "202"):
                return self._end(ctx, s)
        except CodecError as exc:
            return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
        if f60.nmic in ("203", "205"):
            refused = self._tc(ctx)
            if refused:
                return ctx.decline(self.name, refused, "the transaction certificate does not verify")
        ctx.store.update_settlement(s.id, uploaded=s.uploaded + 1)
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"60.3 {f60.nmic} counted")

    @staticmethod
    def _tc(ctx: Context) -> str | None:
        """The issuer checks a chip transaction's TC (issue 14); None when it verifies."""
        msg = ctx.msg
        assert msg is not None
        icc = msg.get(55)
        if not isinstance(icc, TLV) or 2 not in msg:
            return None
        r = ctx.issuer.authorize(IssuerRequest(kind="verify_tc", pan=msg.text(2), expiry=None, amount=0,
                                               icc=icc.raw, pan_seq=msg.text(23)), ctx.now)  # fmt: skip
        return None if r.response_code == "00" else r.response_code

    def _entries(self, ctx: Context, s: SettlementRecord) -> str:
        t, msg = ctx.terminal, ctx.msg
        assert t is not None and msg is not None and s.id is not None
        entries = BatchUploadEntries.parse(msg.text(48)).entries
        known = {d.stan for d in ctx.store.settlement_differences(s.id) if d.kind != "missing_on_terminal"}
        bad = 0
        for e in entries:
            host = None
            for r in ctx.store.find_by_stan(t.terminal_id, ctx.batch_no, e.stan):
                if counts(r):
                    host = r
                    break
            if host is not None and host.amount == e.amount:
                assert host.id is not None
                ctx.store.update_transaction(host.id, settlement_id=s.id)
                continue
            bad += 1
            if e.stan in known:
                continue  # the same entry again (a re-sent upload): its difference is on file
            known.add(e.stan)
            ctx.store.insert_difference(DifferenceRecord(
                settlement_id=s.id, terminal_id=t.terminal_id, merchant_id=t.merchant_id, batch_no=ctx.batch_no,
                stan=e.stan, kind="missing_on_host" if host is None else "amount_mismatch",
                terminal_amount=e.amount, host_amount=None if host is None else host.amount,
                pan_masked=mask_pan(e.pan), transaction_id=None if host is None else host.id,
            ))  # fmt: skip
        ctx.store.update_settlement(s.id, uploaded=s.uploaded + len(entries))
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"{len(entries)} entries, {bad} differences")

    def _advice(self, ctx: Context, s: SettlementRecord) -> str:
        t, f60 = ctx.terminal, ctx.f60
        assert t is not None and f60 is not None and s.id is not None
        op = by_type_code(f60.type_code)
        group = self.advice_groups.get(op.name) if op is not None else None
        if op is None or group is None:
            return ctx.decline(self.name, "40", f"60.1 {f60.type_code} is not an advice")
        ctx.store.update_settlement(s.id, uploaded=s.uploaded + 1)
        for r in ctx.store.find_by_stan(t.terminal_id, ctx.batch_no, ctx.stan):
            if r.operation == op.name and r.status != "rejected" and r.id is not None:
                ctx.store.update_transaction(r.id, settlement_id=s.id)
                ctx.response_code = "00"
                return ctx.prepared(self.name, f"advice already on file (#{r.id})")
        # New to the host: process it as the advice it is, in the settled batch.
        ctx.op = op
        ctx.record = True
        ctx.source = "batch_upload"
        ctx.extra["settlement_id"] = s.id
        ctx.prepared(self.name, f"new {op.name}: processing it now")
        run(ctx, group)
        return PREPARED if ctx.approved else ABORTED

    def _end(self, ctx: Context, s: SettlementRecord) -> str:
        t, msg, f60 = ctx.terminal, ctx.msg, ctx.f60
        assert t is not None and msg is not None and f60 is not None and s.id is not None
        count = batch_end_count(msg.text(48))
        rows = ctx.store.batch_transactions(t.terminal_id, ctx.batch_no)
        unbalanced = {True: s.domestic_result != "1", False: s.foreign_result != "1"}
        # Host records with a difference on file already (an amount mismatch named by the upload,
        # or missing on the terminal from an earlier end message) are not missing once more.
        accounted = {d.transaction_id for d in ctx.store.settlement_differences(s.id) if d.transaction_id is not None}
        missing = 0
        for r in rows:
            if counts(r) and unbalanced[is_domestic(r)] and r.settlement_id != s.id and r.id not in accounted:
                missing += 1
                ctx.store.insert_difference(DifferenceRecord(
                    settlement_id=s.id, terminal_id=t.terminal_id, merchant_id=t.merchant_id, batch_no=ctx.batch_no,
                    stan=r.stan, kind="missing_on_terminal", terminal_amount=None, host_amount=r.amount,
                    pan_masked=r.pan_masked, transaction_id=r.id,
                ))  # fmt: skip
        host = host_totals(rows)
        terminal = totals_from_dict(s.terminal_totals)
        status = s.status
        if same(host.domestic, terminal.domestic) and same(host.foreign, terminal.foreign):
            status = "reconciled" if s.status == "unbalanced" else s.status
        ctx.store.update_settlement(s.id, uploaded=count, upload_end=f60.nmic, status=status,
                                    host_totals=totals_dict(host))  # fmt: skip
        ctx.reply[48] = f"{count:04d}"
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"end {f60.nmic}: {count} uploaded, {missing} missing on terminal, {status}")
