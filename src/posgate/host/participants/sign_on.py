"""Sign-on (3.4, 4.1, D3, D5, D7): fresh working keys under the TMK, the batch to use, the
sign-on register; and the D5 gate that refuses financial messages before today's sign-on.

Theory of operation
-------------------
* :class:`RequireSignedOnToday` (gate, before the MAC check): a message that must carry a MAC
  needs working keys from a sign-on made today (acquirer time zone) and not followed by a
  sign-off; otherwise ``22`` with header requirement ``3``.
* :class:`CheckDeviceSerial` (D7): the serial in field 62 (``Sequence No`` + serial) is
  recorded at the first sign-on; a different serial is refused with ``97`` and kept as
  ``pending_serial`` until the acquirer sets ``approved_serial`` to it; the next sign-on
  from that device is a *formal* make-up sign-on that opens a new batch.
* :class:`IssueWorkingKeys`: PIK/MAK(/TDK) drawn from ``env.randbytes`` on every sign-on,
  wrapped under the TMK with check values (``posgate.crypto``); terminal record updated
  (keys, scheme, day, operator, cleared re-sign-on flags); register entry with its cause:
  ``make_up_formal`` > ``remote`` / ``mac_failures`` / ``cutoff`` (the reason the host asked)
  > ``make_up_temporary`` (already signed on today from this device) > ``daily``. The scheme
  must match the terminal's key cipher (``algorithm``): ``006`` for an SM4 (国密) terminal,
  ``001``/``003``/``004`` for a DES one; otherwise ``40`` and nothing changes (its TMK is a key
  of the other cipher, docs/decisions.md N5).

Must never: reuse keys across sign-ons, log or trace a key, or approve an unknown device.
"""

from __future__ import annotations

from posgate.crypto import CryptoError, generate_working_keys, wrap_working_keys
from posgate.dialect.fields import parse_terminal_info
from posgate.host.context import Context
from posgate.host.participants.ic_params import ic_requirement
from posgate.host.participants.identify import record_refused_sign_on
from posgate.host.pipeline import Participant
from posgate.host.ports import SignOnEntry
from posgate.iso8583 import CodecError


class RequireSignedOnToday(Participant):
    def prepare(self, ctx: Context) -> str:
        op, t = ctx.op, ctx.terminal
        assert op is not None and t is not None
        if not op.mac:
            return ctx.prepared(self.name, "not needed")
        if t.signed_on_day != ctx.day or t.signed_off or t.mak is None:
            ctx.rejected = True
            ctx.require("3")
            why = "signed off" if t.signed_off and t.signed_on_day == ctx.day else f"last sign-on {t.signed_on_day}"
            return ctx.decline(self.name, "22", f"no sign-on today ({why})")
        return ctx.prepared(self.name)


class CheckDeviceSerial(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        f62 = msg.data(62)
        if f62 is None:
            ctx.extra["serial"] = None
            return ctx.prepared(self.name, "no serial sent")
        try:
            serial = parse_terminal_info(f62)
        except CodecError as exc:
            return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
        ctx.extra["serial"] = serial
        if t.device_serial is None:
            ctx.extra["serial_change"] = {"device_serial": serial}
            return ctx.prepared(self.name, "first sign-on: serial recorded")
        if serial == t.device_serial:
            return ctx.prepared(self.name, "known device")
        if t.approved_serial == serial:
            ctx.sign_on_cause = "make_up_formal"
            ctx.extra["serial_change"] = {"device_serial": serial, "approved_serial": None, "pending_serial": None}
            return ctx.prepared(self.name, "approved replacement device")
        if t.pending_serial != serial:
            ctx.store.update_terminal(t.terminal_id, pending_serial=serial)
        ctx.rejected = True
        record_refused_sign_on(ctx, "device_serial", "97", serial)
        return ctx.decline(self.name, "97", "device serial differs from the recorded one (D7)")


class IssueWorkingKeys(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t, f60 = ctx.msg, ctx.terminal, ctx.f60
        assert msg is not None and t is not None and f60 is not None
        scheme = f60.nmic
        if (scheme == "006") != (t.algorithm == "sm4"):
            ctx.rejected = True
            want = "006" if t.algorithm == "sm4" else "001, 003 or 004"
            return ctx.decline(self.name, "40", f"key scheme {scheme} for a {t.algorithm.upper()} terminal (wants {want})")
        try:
            keys = generate_working_keys(scheme, ctx.env.randbytes)
            f62 = wrap_working_keys(t.tmk, scheme, keys)
        except CryptoError as exc:
            return ctx.decline(self.name, "96", f"key generation failed ({type(exc).__name__})")
        cause = ctx.sign_on_cause
        if cause is None:
            if t.resign_requested:
                cause = {"mac_failures": "mac_failures", "cutoff": "cutoff"}.get(t.resign_reason or "", "remote")
            elif t.signed_on_day == ctx.day and not t.signed_off:
                cause = "make_up_temporary"
            else:
                cause = "daily"
        batch_no = t.batch_no
        changes: dict[str, object] = dict(ctx.extra.get("serial_change") or {})
        if cause == "make_up_formal":
            # An approved device replacement starts a new batch: the old device's batch may
            # hold transactions the new device knows nothing about.
            batch_no = f"{int(batch_no) % 999999 + 1:06d}"
            ctx.store.close_batch(t.terminal_id, t.batch_no, ctx.now)
            ctx.store.open_batch(t.terminal_id, batch_no, ctx.now)
            changes["batch_no"] = batch_no
        operator = msg.text(63).strip() or None
        ctx.store.update_terminal(
            t.terminal_id, pik=keys.pik, mak=keys.mak, tdk=keys.tdk, key_scheme=scheme, signed_on_day=ctx.day,
            signed_off=False, operator=operator, mac_failures=0, resign_requested=False, resign_reason=None,
            last_sign_on_at=ctx.now, **changes,
        )  # fmt: skip
        ctx.store.record_sign_on(SignOnEntry(
            at=ctx.now, day=ctx.day, terminal_id=t.terminal_id, merchant_id=t.merchant_id, kind="sign_on",
            cause=cause, operator=operator, device_serial=ctx.extra.get("serial"), key_scheme=scheme,
            batch_no=batch_no, stan=ctx.stan, response_code="00",
        ))  # fmt: skip
        ctx.response_code = "00"
        # The sign-on answers the host's request to sign on again; parameters may still wait.
        ctx.requirement = "1" if t.params_pending else ic_requirement(t)
        ctx.reply[60] = "00" + batch_no + scheme
        ctx.reply[62] = f62
        return ctx.prepared(self.name, f"{cause}, scheme {scheme}, batch {batch_no}")
