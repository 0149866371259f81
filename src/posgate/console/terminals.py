"""Terminals, merchants and the sign-on register (签到登记), and what the support desk may change.

Changes go through the same columns the host reads: ``resign_requested``/``resign_reason``
(the host answers the next request with header requirement 3, D2), ``approved_serial`` (D7: the
replacement device's next sign-on succeeds and opens a new batch), ``status`` (suspension, D6),
``params`` + ``params_pending`` (header requirement 1: the terminal downloads its parameters),
``algorithm`` (DES or SM4 keys, docs/dialect.md 4.4: the store's ``set_algorithm``, which drops
the working keys and asks for a sign-on with the new scheme).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from posgate.console.audit import audit
from posgate.console.auth import Principal
from posgate.console.fmt import fmt_time, today, utcnow
from posgate.console.labels import labeller
from posgate.console.ledger import scope, unsigned_clause
from posgate.console.txns import ConsoleError, NotFound
from posgate.domain.response_codes import describe
from posgate.store.admin import AdminError, reinstate_merchant
from posgate.store.admin import set_algorithm as store_set_algorithm
from posgate.store.schema import differences, merchants, sign_ons, terminals, transactions

TC, MC, S = terminals.c, merchants.c, sign_ons.c

# Downloadable parameters (spec 3.12, tag → (zh, en, max length, digits only)).
PARAMS: dict[str, tuple[str, str, int, bool]] = {
    "12": ("通讯超时(秒)", "Communication timeout (s)", 2, True),
    "13": ("重拨次数", "Redial times", 1, True),
    "14": ("主机电话1", "Host phone 1", 14, True),
    "15": ("主机电话2", "Host phone 2", 14, True),
    "17": ("管理电话", "Management phone", 14, True),
    "18": ("是否支持小费(0/1)", "Tips allowed (0/1)", 1, True),
    "19": ("小费比例(%)", "Tip percent", 2, True),
    "20": ("允许手输卡号(0/1)", "Manual card entry allowed (0/1)", 1, True),
    "21": ("结算后自动签退(0/1)", "Sign off after settlement (0/1)", 1, True),
    "22": ("商户名称", "Merchant name on slips", 40, False),
    "23": ("冲正重发次数", "Reversal resend times", 1, True),
    "24": ("离线上送方式", "Offline send flag", 1, True),
}

# Values the terminal acts on only within a range: a 0 comm timeout or 0 reversal resends is
# replaced by the terminal's default, and a flag other than 0/1 reads as "off"; the console
# refuses them rather than store a value the terminal would not honour.
PARAM_RANGES: dict[str, tuple[int, int]] = {"12": (1, 99), "18": (0, 1), "20": (0, 1), "21": (0, 1), "23": (1, 9)}

TERMINAL_COLS = [TC.id, TC.terminal_id, MC.merchant_id, MC.name.label("merchant_name"),
                 MC.name_en.label("merchant_name_en"), MC.status.label("merchant_status"), TC.device_serial,
                 TC.pending_serial, TC.approved_serial, TC.status, TC.suspended_reason, TC.batch_no, TC.signed_on_day,
                 TC.last_sign_on_at, TC.signed_off, TC.operator, TC.key_scheme, TC.mac_failures, TC.resign_requested,
                 TC.resign_reason, TC.params, TC.params_pending, TC.last_response_codes, TC.tmk_kcv,
                 TC.algorithm, TC.dialect]  # fmt: skip


def _with_merchant() -> Any:
    return terminals.join(merchants, TC.merchant_pk == MC.id)


def list_terminals(conn: Connection, p: Principal, tz: str) -> list[dict[str, Any]]:
    day = today(tz)
    rows = [dict(r) for r in conn.execute(select(*TERMINAL_COLS).select_from(_with_merchant())
                                         .where(scope(MC.merchant_id, p)).order_by(TC.terminal_id)).mappings()]  # fmt: skip
    T = transactions.c  # noqa: N806
    unsigned: dict[str, int] = dict(conn.execute(select(T.terminal_id, func.count()).where(unsigned_clause(), scope(T.merchant_id, p))
                                 .group_by(T.terminal_id)).all())  # fmt: skip
    diffs: dict[str, int] = dict(conn.execute(select(differences.c.terminal_id, func.count()).where(differences.c.status == "open",
                              scope(differences.c.merchant_id, p)).group_by(differences.c.terminal_id)).all())  # fmt: skip
    for r in rows:
        r["signed_on_today"] = r["signed_on_day"] == day and not r["signed_off"]
        r["unsigned"] = int(unsigned.get(r["terminal_id"], 0))
        r["open_differences"] = int(diffs.get(r["terminal_id"], 0))
        r["recent_codes"] = _codes(r["last_response_codes"])
    return rows


def _codes(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(c if not isinstance(c, list | tuple | dict) else (c[-1] if not isinstance(c, dict) else c.get("code", "")))
                for c in value][-8:]  # fmt: skip
    return []


def get_terminal(conn: Connection, p: Principal, terminal_id: str, tz: str) -> dict[str, Any]:
    for r in list_terminals(conn, p, tz):
        if r["terminal_id"] == terminal_id:
            r["sign_ons"] = register(conn, p, {"terminal_id": terminal_id}, limit=20)
            return r
    raise NotFound()


def register(conn: Connection, p: Principal, f: dict[str, str], limit: int = 1000) -> list[dict[str, Any]]:
    cond = [scope(S.merchant_id, p)]
    if f.get("terminal_id"):
        cond.append(S.terminal_id == f["terminal_id"])
    if f.get("merchant_id"):
        cond.append(S.merchant_id == f["merchant_id"])
    if f.get("kind"):
        cond.append(S.kind == f["kind"])
    if f.get("cause"):
        cond.append(S.cause == f["cause"])
    if re.match(r"^\d{4}-\d{2}-\d{2}$", f.get("day_from", "")):
        cond.append(S.day >= f["day_from"])
    if re.match(r"^\d{4}-\d{2}-\d{2}$", f.get("day_to", "")):
        cond.append(S.day <= f["day_to"])
    rows = conn.execute(select(sign_ons).where(*cond).order_by(S.at.desc(), S.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]


def register_csv(rows: list[dict[str, Any]], tz: str, lang: str, _: Callable[..., str]) -> str:
    """The sign-on register as the page shows it: stable English column names, the kind and
    cause as the page's labels in the reader's language; the response code stays a code (what
    the terminal received) with its meaning in ``response_text``. UTF-8 with a BOM."""
    label = labeller(_)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["local_time", "day", "terminal_id", "merchant_id", "kind", "cause", "operator", "device_serial",
                "key_scheme", "batch_no", "stan", "response_code", "detail", "response_text"])  # fmt: skip
    for r in rows:
        rc = describe(r["response_code"]) if r["response_code"] else None
        w.writerow([fmt_time(r["at"], tz), r["day"], r["terminal_id"], r["merchant_id"], label("signon_kind", r["kind"]),
                    label("signon_cause", r["cause"]), r["operator"] or "", r["device_serial"] or "", r["key_scheme"] or "",
                    r["batch_no"] or "", r["stan"] or "", r["response_code"] or "", r["detail"] or "",
                    (rc.zh if lang == "zh_CN" else rc.en) if rc else ""])  # fmt: skip
    return "\ufeff" + out.getvalue()


def _terminal_row(conn: Connection, p: Principal, terminal_id: str) -> dict[str, Any]:
    row = conn.execute(select(*TERMINAL_COLS).select_from(_with_merchant())
                       .where(TC.terminal_id == terminal_id, scope(MC.merchant_id, p))).mappings().first()  # fmt: skip
    if row is None:
        raise NotFound()
    return dict(row)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ConsoleError("A reason is required; it is kept in the audit log.")
    return reason[:500]


def request_resign(conn: Connection, p: Principal, terminal_id: str, reason: str, now: datetime | None = None) -> None:
    row = _terminal_row(conn, p, terminal_id)
    reason = _reason(reason)
    conn.execute(update(terminals).where(TC.terminal_id == terminal_id).values(resign_requested=True, resign_reason="support"))
    audit(conn, actor=p.username, action="terminal.resign_requested", object_type="terminal", object_id=terminal_id,
          merchant_id=row["merchant_id"], before={"resign_requested": bool(row["resign_requested"]), "resign_reason": row["resign_reason"]},
          after={"resign_requested": True, "resign_reason": "support"}, detail=reason, at=now)  # fmt: skip


def approve_device(conn: Connection, p: Principal, terminal_id: str, reason: str, now: datetime | None = None) -> str:
    row = _terminal_row(conn, p, terminal_id)
    reason = _reason(reason)
    if not row["pending_serial"]:
        raise ConsoleError("No replacement device is waiting for approval on this terminal.", 409)
    conn.execute(update(terminals).where(TC.terminal_id == terminal_id).values(approved_serial=row["pending_serial"]))
    audit(conn, actor=p.username, action="terminal.device_approved", object_type="terminal", object_id=terminal_id,
          merchant_id=row["merchant_id"],
          before={"device_serial": row["device_serial"], "pending_serial": row["pending_serial"],
                  "approved_serial": row["approved_serial"]},
          after={"approved_serial": row["pending_serial"]}, detail=reason, at=now)  # fmt: skip
    return str(row["pending_serial"])


def set_terminal_status(conn: Connection, p: Principal, terminal_id: str, suspend: bool, reason: str,
                        now: datetime | None = None) -> None:  # fmt: skip
    row = _terminal_row(conn, p, terminal_id)
    reason = _reason(reason)
    new = "suspended" if suspend else "active"
    if row["status"] == new:
        raise ConsoleError("The terminal is suspended already." if suspend else "The terminal is active already.", 409)
    conn.execute(update(terminals).where(TC.terminal_id == terminal_id)
                 .values(status=new, suspended_reason=reason if suspend else None))  # fmt: skip
    audit(conn, actor=p.username, action="terminal.suspend" if suspend else "terminal.reinstate", object_type="terminal",
          object_id=terminal_id, merchant_id=row["merchant_id"],
          before={"status": row["status"], "suspended_reason": row["suspended_reason"]},
          after={"status": new, "suspended_reason": reason if suspend else None}, detail=reason, at=now)  # fmt: skip


def set_algorithm(conn: Connection, p: Principal, terminal_id: str, algorithm: str, reason: str, keyring: Any,
                  now: datetime | None = None) -> str:  # fmt: skip
    """Switch the terminal between DES and SM4 (国密) keys; returns the TMK's new check value."""
    row = _terminal_row(conn, p, terminal_id)
    reason = _reason(reason)
    if algorithm not in ("des", "sm4"):
        raise ConsoleError("Choose DES or SM4.")
    if algorithm == "sm4" and row["dialect"] != "cup":
        # A dialect profile's MAC and PIN format are DES ones (docs/dialect-profiles.md).
        raise ConsoleError("An SM4 (国密) terminal speaks only the baseline dialect profile (cup).", 409)
    if keyring is None:
        raise ConsoleError("The console has no master key here; use posgate admin terminal set-algorithm.", 409)
    try:
        new = store_set_algorithm(conn, keyring, terminal_id, algorithm, actor=p.username, detail=reason)
    except AdminError:
        raise ConsoleError("The terminal uses these keys already, or its TMK does not fit SM4 (16 bytes).", 409) from None
    return new.kcv


def set_params(conn: Connection, p: Principal, terminal_id: str, values: dict[str, str], now: datetime | None = None) -> dict[str, str]:
    row = _terminal_row(conn, p, terminal_id)
    # Every value accepted here reaches the terminal in its next parameter download (the host
    # sends each tag as stored, 22 as GBK); anything the download could not carry is refused.
    for key in values:
        if key not in PARAMS:
            raise ConsoleError("Parameter {tag} cannot be set here; the console sets {tags}.", tag=key,
                               tags=" ".join(PARAMS))  # fmt: skip
    params: dict[str, str] = {}
    for tag, (_zh, _en, size, digits) in PARAMS.items():
        v = (values.get(tag) or "").strip()
        if not v:
            continue
        # isascii: str.isdigit() also passes "²" or "٣", which no terminal field can carry.
        if len(v) > size or (digits and not (v.isascii() and v.isdigit())):
            raise ConsoleError("Parameter {tag} must be at most {size} digits." if digits
                               else "Parameter {tag} must be at most {size} characters.", tag=tag, size=size)  # fmt: skip
        low, high = PARAM_RANGES.get(tag, (0, 10**size))
        if digits and not low <= int(v) <= high:
            raise ConsoleError("Parameter {tag} must be between {low} and {high}.", tag=tag, low=low, high=high)
        if not digits:
            try:
                encoded = v.encode("gbk")
            except UnicodeEncodeError:
                encoded = b""
            if not encoded or len(encoded) > size or not v.isprintable():
                msg = "Parameter {tag} must fit in {size} bytes of GBK text (a Chinese character takes 2)."
                raise ConsoleError(msg, tag=tag, size=size)
        params[tag] = v
    before = dict(row["params"] or {})
    if before == params:
        raise ConsoleError("Nothing changed.", 409)
    conn.execute(update(terminals).where(TC.terminal_id == terminal_id).values(params=params, params_pending=True))
    audit(conn, actor=p.username, action="terminal.params", object_type="terminal", object_id=terminal_id,
          merchant_id=row["merchant_id"], before={"params": before}, after={"params": params, "params_pending": True},
          at=now)  # fmt: skip
    return params


def set_profile(conn: Connection, p: Principal, terminal_id: str, name: str, reason: str,
                now: datetime | None = None) -> None:  # fmt: skip
    """The dialect profile the terminal speaks (posgate.dialect.profiles); the host uses it from
    the terminal's next request. Acquirer roles only (the route's guard); audited with a reason."""
    from posgate.dialect.profiles import PROFILES

    row = _terminal_row(conn, p, terminal_id)
    reason = _reason(reason)
    if name not in PROFILES:
        raise ConsoleError("Unknown dialect profile {name}.", name=name[:32])
    if row["dialect"] == name:
        raise ConsoleError("Nothing changed.", 409)
    if row["algorithm"] == "sm4" and name != "cup":
        raise ConsoleError("An SM4 (国密) terminal speaks only the baseline dialect profile (cup).", 409)
    conn.execute(update(terminals).where(TC.terminal_id == terminal_id).values(dialect=name))
    audit(conn, actor=p.username, action="terminal.set_profile", object_type="terminal", object_id=terminal_id,
          merchant_id=row["merchant_id"], before={"dialect": row["dialect"]}, after={"dialect": name}, detail=reason,
          at=now)  # fmt: skip


# ------------------------------------------------------------------ merchants


def list_merchants(conn: Connection, p: Principal) -> list[dict[str, Any]]:
    rows = conn.execute(select(merchants).where(scope(MC.merchant_id, p)).order_by(MC.merchant_id)).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["terminals"] = conn.execute(select(func.count()).select_from(terminals).where(TC.merchant_pk == r["id"])).scalar_one()
        out.append(d)
    return out


def set_merchant_status(conn: Connection, p: Principal, merchant_id: str, suspend: bool, reason: str,
                        now: datetime | None = None) -> None:  # fmt: skip
    now = now or utcnow()
    row = conn.execute(select(merchants).where(MC.merchant_id == merchant_id, scope(MC.merchant_id, p))).mappings().first()
    if row is None:
        raise NotFound()
    reason = _reason(reason)
    new = "suspended" if suspend else "active"
    if row["status"] == new:
        raise ConsoleError("The merchant is suspended already." if suspend else "The merchant is active already.", 409)
    if not suspend:
        # The one reinstatement (also ``posgate admin merchant reinstate``): it writes the
        # register entry that restarts the D6 count; without it the next sign-on suspends again.
        reinstate_merchant(conn, merchant_id, reason, actor=p.username, now=now)
        return
    values = {"status": new, "suspended_reason": reason, "suspended_at": now, "suspended_by": p.username}
    conn.execute(update(merchants).where(MC.merchant_id == merchant_id).values(**values))
    audit(conn, actor=p.username, action="merchant.suspend", object_type="merchant",
          object_id=merchant_id, merchant_id=merchant_id,
          before={"status": row["status"], "suspended_reason": row["suspended_reason"], "suspended_by": row["suspended_by"]},
          after={k: v for k, v in values.items() if k != "suspended_at"}, detail=reason, at=now)  # fmt: skip
