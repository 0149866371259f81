"""Terminal parameters (3.12, D12): download (0800/360, field 62 = tag + fixed-width value)
and status upload (0820/362).

The parameter set is the terminal's ``params`` (keys are the 2-digit tags of 3.12 or the
names in :data:`NAMES`) over :data:`DEFAULTS`; tag 22, the name the terminal prints on its
slips, is the terminal's own ``22`` when the console set one (a shop name per till), else the
merchant's name, in GBK. Every parameter the console stores goes out: a value the host cannot
send (not ASCII, too long) declines the download ``96`` rather than being dropped unnoticed.
A download clears ``params_pending`` (header requirement 1, D2).

Status upload (header requirement 2, 1.3): the spec lets the host order one in any reply but
says nothing of when. The host asks in the reply to every parameter download: the status
items (3.12: the terminal's parameters, after the ``011021031041051`` prefix) then show
what the terminal actually runs with, so the console can see a download took effect. A
re-sign-on request (3) outranks it; the terminal may also upload on its own at any time.
Each upload is kept in the terminal's ``last_status_upload``: when, the raw field 62, the
items as sent and, when they read as parameter items, ``params`` (tag → text).
"""

from __future__ import annotations

from typing import Any

from posgate.dialect.fields import PARAMETER_WIDTHS, STATUS_PREFIX, format_parameters, parse_parameters
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.iso8583 import CodecError

NAMES = {
    "comm_timeout": "12", "redial_times": "13", "host_phone_1": "14", "host_phone_2": "15",
    "host_phone_3": "16", "management_phone": "17", "tip_allowed": "18", "tip_percent": "19",
    "manual_entry": "20", "auto_sign_off": "21", "merchant_name": "22", "reversal_resend_times": "23",
    "offline_send": "24", "master_key_index": "25", "transaction_enable": "26",
}  # fmt: skip

# 60 s comm timeout (the common terminal default, section 10), 3 redials, tips off, manual
# entry on, no auto sign-off, reversal resent 3 times (section 8), offline upload on.
DEFAULTS: dict[str, str] = {"12": "60", "13": "3", "18": "0", "19": "00", "20": "1", "21": "0", "23": "3",
                            "24": "1", "25": "0"}  # fmt: skip


def parameter_set(params: dict[str, Any], merchant_name: str) -> dict[str, bytes]:
    """Tag → value bytes of a download. Raises :class:`CodecError` for a value that cannot go."""
    out: dict[str, bytes] = {tag: v.encode("ascii") for tag, v in DEFAULTS.items()}
    for key, value in params.items():
        tag = NAMES.get(key, key)
        if tag not in PARAMETER_WIDTHS:
            continue
        if tag == "22":
            if str(value).strip():
                merchant_name = str(value).strip()
            continue
        try:
            raw = value if isinstance(value, bytes) else str(value).encode("ascii")
        except UnicodeEncodeError:
            raise CodecError(f"62.{tag}", "an ASCII value") from None
        if tag in ("12", "19") and raw.isdigit():
            raw = raw.rjust(2, b"0")
        if len(raw) > PARAMETER_WIDTHS[tag]:
            raise CodecError(f"62.{tag}", f"at most {PARAMETER_WIDTHS[tag]} bytes")
        out[tag] = raw
    name = merchant_name.encode("gbk", "replace")
    while len(name) > 40:  # never cut a GBK character in half
        merchant_name = merchant_name[:-1]
        name = merchant_name.encode("gbk", "replace")
    out["22"] = name
    return out


class DownloadParameters(Participant):
    def prepare(self, ctx: Context) -> str:
        t, m = ctx.terminal, ctx.merchant
        assert t is not None and m is not None
        try:
            ctx.reply[62] = format_parameters(parameter_set(t.params or {}, m.name))
        except CodecError as exc:
            return ctx.decline(self.name, "96", f"bad parameter {exc.field}")
        if t.params_pending:
            ctx.store.update_terminal(t.terminal_id, params_pending=False)
        # Then report the status (requirement 2): what the terminal now runs with.
        ctx.requirement = "3" if t.resign_requested else "2"
        ctx.response_code = "00"
        return ctx.prepared(self.name)


class UploadStatus(Participant):
    def prepare(self, ctx: Context) -> str:
        t, msg = ctx.terminal, ctx.msg
        assert t is not None and msg is not None
        raw = msg.data(62) or b""
        status: dict[str, Any] = {"at": ctx.now.isoformat(), "day": ctx.day, "stan": ctx.stan, "raw": raw.hex()}
        if raw.startswith(STATUS_PREFIX):
            items = raw[len(STATUS_PREFIX) :]
            status["items"] = items.decode("ascii", "replace")
            try:
                parsed = parse_parameters(items)
            except CodecError:
                pass  # items beyond the parameter tags (LY sends 27, 51...): kept raw above
            else:
                status["params"] = {
                    tag: v.decode("gbk" if tag == "22" else "ascii", "replace").strip() for tag, v in parsed.items()
                }
        ctx.store.update_terminal(t.terminal_id, last_status_upload=status)
        ctx.response_code = "00"
        return ctx.prepared(self.name)
