"""Provisioning: merchants, terminals, the built-in issuer's cards, acquirer settings.

Shared by ``posgate admin`` and the demo data. Not on the transaction path, so plain SQLAlchemy
Core. Every change is written to the audit log with its actor. Functions raise
:class:`AdminError` with a message that says what to do; the CLI turns it into an exit code.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from posgate.crypto.ciphers import ALGORITHMS, cipher_for
from posgate.crypto.keys import set_odd_parity
from posgate.crypto.luhn import luhn_valid
from posgate.domain.masking import mask_pan
from posgate.host.participants import lapse
from posgate.host.ports import Env
from posgate.store import schema as s
from posgate.store.keyring import Keyring
from posgate.store.sql import SqlHostStore

log = logging.getLogger("posgate.admin")


class AdminError(ValueError):
    """A provisioning request that cannot be carried out (the message says why and what to do)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _audit(conn: Connection, actor: str, action: str, object_type: str, object_id: str, merchant_id: str | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, detail: str | None = None) -> None:  # fmt: skip
    conn.execute(insert(s.audit_log), {"at": _now(), "actor": actor, "action": action, "object_type": object_type,
                                       "object_id": object_id, "merchant_id": merchant_id, "before": before,
                                       "after": after, "detail": detail})  # fmt: skip


# -- settings ----------------------------------------------------------------------------------


def get_settings(conn: Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute(select(s.settings.c.key, s.settings.c.value))}


def set_setting(conn: Connection, key: str, value: str, *, actor: str = "cli", only_if_missing: bool = False) -> bool:
    """Set an acquirer setting; returns whether anything changed."""
    old = conn.execute(select(s.settings.c.value).where(s.settings.c.key == key)).scalar()
    if old == value or (old is not None and only_if_missing):
        return False
    if old is None:
        conn.execute(insert(s.settings), {"key": key, "value": value})
    else:
        conn.execute(update(s.settings).where(s.settings.c.key == key).values(value=value))
    _audit(conn, actor, "setting.set", "setting", key, before=None if old is None else {"value": old}, after={"value": value})
    return True


# -- merchants ---------------------------------------------------------------------------------


def _check_digits(what: str, value: str, length: int) -> None:
    if len(value) != length or not value.isdigit():
        raise AdminError(f"{what} must be {length} digits (got {value!r})")


def add_merchant(conn: Connection, merchant_id: str, name: str, mcc: str, fee_rate_bp: int, *, name_en: str = "",
                 actor: str = "cli") -> int:  # fmt: skip
    _check_digits("merchant id (field 42)", merchant_id, 15)
    _check_digits("MCC", mcc, 4)
    if not 0 <= fee_rate_bp <= 10_000:
        raise AdminError("fee rate must be between 0 and 10000 hundredths of a percent (60 = 0.60 %)")
    if conn.execute(select(s.merchants.c.id).where(s.merchants.c.merchant_id == merchant_id)).first():
        raise AdminError(f"merchant {merchant_id} exists already ('posgate admin merchant list' shows it)")
    pk = conn.execute(
        insert(s.merchants).returning(s.merchants.c.id),
        {"merchant_id": merchant_id, "name": name, "name_en": name_en, "mcc": mcc, "fee_rate_bp": fee_rate_bp,
         "created_at": _now()},
    ).scalar_one()  # fmt: skip
    _audit(conn, actor, "merchant.add", "merchant", merchant_id, merchant_id,
           after={"name": name, "name_en": name_en, "mcc": mcc, "fee_rate_bp": fee_rate_bp})  # fmt: skip
    return int(pk)


def list_merchants(conn: Connection) -> list[dict[str, Any]]:
    m = s.merchants.c
    rows = conn.execute(select(m.merchant_id, m.name, m.name_en, m.mcc, m.fee_rate_bp, m.status, m.suspended_reason)
                        .order_by(m.merchant_id))  # fmt: skip
    return [dict(r._mapping) for r in rows]


def check_reinstatable(conn: Connection, merchant_id: str, reason: str) -> None:
    """Refuse a reinstatement that makes no sense (see :func:`reinstate_merchant`)."""
    if not reason.strip():
        raise AdminError("a reason is required (--reason '...'): it is kept in the audit log")
    status = conn.execute(select(s.merchants.c.status).where(s.merchants.c.merchant_id == merchant_id)).scalar()
    if status is None:
        raise AdminError(f"no merchant {merchant_id} ('posgate admin merchant list' shows the merchants)")
    if status == "active":
        raise AdminError(f"merchant {merchant_id} is active already; nothing to reinstate")


def lapse_rules(conn: Connection) -> tuple[str, int]:
    """(acquirer time zone, D6 lapse days) from the settings, as ``posgate serve`` reads them."""
    st = get_settings(conn)
    tz = st.get("timezone") or Env.timezone
    days = st.get("lapse_days", "")
    return tz, int(days) if days.isdigit() else Env.lapse_days


def reinstate_merchant(conn: Connection, merchant_id: str, reason: str, *, actor: str = "cli",
                       now: datetime | None = None) -> None:  # fmt: skip
    """THE reinstatement of a suspended merchant: the console's pages and API and
    ``posgate admin merchant reinstate`` all call this. Checks it makes sense, then the host
    core's rule (status, audit entry, and the ``reinstated`` register entry that restarts the D6
    count: without it the merchant's next sign-on would find it lapsed and suspend it again)."""
    check_reinstatable(conn, merchant_id, reason)
    tz, _days = lapse_rules(conn)
    lapse.reinstate_merchant(SqlHostStore.for_admin(conn), merchant_id, actor, reason.strip(), now or _now(), tz)


def sweep_lapses(conn: Connection, now: datetime | None = None) -> lapse.SweepResult:
    """The daily D6 sweep over every merchant (``posgate serve`` and ``posgate admin sweep``):
    suspends those that lapse today, logs one line per suspension and per warning (the merchants
    that lapse tomorrow unless a terminal signs on today). Same rule as the host's sign-on gate."""
    tz, days = lapse_rules(conn)
    ids = list(conn.execute(select(s.merchants.c.merchant_id).order_by(s.merchants.c.merchant_id)).scalars())
    result = lapse.sweep(SqlHostStore.for_admin(conn), ids, now or _now(), tz, days)
    for mid in result.suspended:
        log.warning("D6 sweep %s: merchant %s suspended: no terminal signed on for %d days", result.day, mid, days)
    for w in result.warned:
        log.warning("D6 sweep %s: merchant %s lapses on %s unless a terminal signs on today (last sign-on %s)",
                    result.day, w.merchant_id, w.lapse_day, w.last_day)  # fmt: skip
    return result


def lapse_warnings(conn: Connection, merchant_ids: list[str] | None = None,
                   now: datetime | None = None) -> list[lapse.LapseWarning]:  # fmt: skip
    """Active merchants (of ``merchant_ids``, or all) that lapse tomorrow unless a terminal signs
    on today: the console's notice, by the same rule as the sweep (read only, suspends nothing)."""
    tz, days = lapse_rules(conn)
    today = lapse.local_day(now or _now(), tz)
    m, so = s.merchants.c, s.sign_ons.c
    last = (select(so.merchant_id, func.max(so.day).label("last_day"))
            .where(so.kind.in_(("sign_on", "reinstated"))).group_by(so.merchant_id).subquery())  # fmt: skip
    q = (select(m.merchant_id, last.c.last_day).join_from(s.merchants, last, last.c.merchant_id == m.merchant_id)
         .where(m.status == "active").order_by(m.merchant_id))  # fmt: skip
    if merchant_ids is not None:
        q = q.where(m.merchant_id.in_(merchant_ids))
    return [lapse.LapseWarning(mid, ld, lapse.lapse_day(ld, days)) for mid, ld in conn.execute(q)
            if lapse.lapse_state(ld, today, days) == "warn"]  # fmt: skip


# -- terminals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTerminal:
    terminal_id: str
    kcv: str
    tmk_generated: bytes | None  # the TMK, only when generated here (to hand to the key custodian)


def parse_tmk(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key.replace(" ", ""))
    except ValueError:
        raise AdminError("the TMK must be hex, 32 digits (double length) or 48 (triple length)") from None
    if len(key) not in (16, 24):
        raise AdminError("the TMK must be 16 or 24 bytes (32 or 48 hex digits)")
    return key


def _check_algorithm(algorithm: str, tmk: bytes | None) -> None:
    if algorithm not in ALGORITHMS:
        raise AdminError(f"the algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    if tmk is not None and len(tmk) not in cipher_for(algorithm).key_lengths:
        raise AdminError(f"an {algorithm.upper()} TMK must be 16 bytes (32 hex digits), got {len(tmk)}")


def tmk_check_value(tmk: bytes, algorithm: str = "des") -> str:
    """The TMK's check value as shown to the key custodian: 4 bytes of E(TMK, zero block)."""
    return cipher_for(algorithm).kcv(tmk).hex().upper()


def _new_tmk(algorithm: str) -> bytes:
    raw = secrets.token_bytes(16)
    return raw if algorithm == "sm4" else set_odd_parity(raw)  # SM4 keys carry no parity


def add_terminal(conn: Connection, keyring: Keyring, terminal_id: str, merchant_id: str, *, tmk: bytes | None = None,
                 serial: str | None = None, batch_no: str = "000001", actor: str = "cli",
                 algorithm: str = "des", ic_download: bool = True) -> NewTerminal:  # fmt: skip
    """Add a terminal. A new terminal holds no CA public keys or IC parameters: unless
    ``ic_download`` is False (the demo and the fleet, which run without them), it is flagged
    ``capk_pending`` / ``aid_pending`` so the host's first reply asks it to download both
    (header requirement 4, then 5; docs/dialect.md 3.12)."""
    _check_digits("terminal id (field 41)", terminal_id, 8)
    _check_digits("batch number", batch_no, 6)
    _check_algorithm(algorithm, tmk)
    merchant_pk = conn.execute(select(s.merchants.c.id).where(s.merchants.c.merchant_id == merchant_id)).scalar()
    if merchant_pk is None:
        raise AdminError(f"no merchant {merchant_id}; add it first with 'posgate admin merchant add'")
    if conn.execute(select(s.terminals.c.id).where(s.terminals.c.terminal_id == terminal_id)).first():
        raise AdminError(f"terminal {terminal_id} exists already ('posgate admin terminal list' shows it)")
    generated = None
    if tmk is None:
        tmk = generated = _new_tmk(algorithm)
    check = tmk_check_value(tmk, algorithm)
    now = _now()
    conn.execute(
        insert(s.terminals),
        {"terminal_id": terminal_id, "merchant_pk": merchant_pk, "tmk_enc": keyring.encrypt(tmk, b"tmk"),
         "tmk_kcv": check, "device_serial": serial, "batch_no": batch_no, "params": {}, "created_at": now,
         "algorithm": algorithm, "capk_pending": ic_download, "aid_pending": ic_download},
    )  # fmt: skip
    existing = select(s.batches.c.id).where(s.batches.c.terminal_id == terminal_id, s.batches.c.batch_no == batch_no)
    if conn.execute(existing).first() is None:
        conn.execute(insert(s.batches), {"terminal_id": terminal_id, "batch_no": batch_no, "opened_at": now, "status": "open"})
    _audit(conn, actor, "terminal.add", "terminal", terminal_id, merchant_id,
           after={"merchant_id": merchant_id, "tmk_kcv": check, "device_serial": serial, "batch_no": batch_no,
                  "algorithm": algorithm})  # fmt: skip
    return NewTerminal(terminal_id, check, generated)


def set_algorithm(conn: Connection, keyring: Keyring, terminal_id: str, algorithm: str, *, tmk: bytes | None = None,
                  actor: str = "cli", detail: str | None = None) -> NewTerminal:  # fmt: skip
    """Switch a terminal between DES and SM4 (国密) keys.

    The working keys of the old cipher are dropped and the terminal is asked to sign on again
    (header requirement 3): its next sign-on must use the new scheme (006 for SM4). A new TMK
    may be given (a 24-byte DES TMK cannot serve SM4); otherwise the TMK stays and its check
    value is recomputed under the new cipher for the key custodian.
    """
    _check_algorithm(algorithm, tmk)
    row = _terminal_row(conn, terminal_id)
    t = s.terminals.c
    old, tmk_enc, dialect = conn.execute(
        select(t.algorithm, t.tmk_enc, t.dialect).where(t.terminal_id == terminal_id)
    ).one()
    if algorithm == "sm4" and dialect != "cup":
        # An SM4 terminal MACs and blocks PINs with SM4: a profile's DES MAC or PIN format
        # cannot apply, so the two are not combined (docs/dialect-profiles.md).
        raise AdminError(f"terminal {terminal_id} speaks the dialect profile {dialect}; SM4 keys need the "
                         f"baseline: 'posgate admin terminal set-profile {terminal_id} cup' first")  # fmt: skip
    key = tmk if tmk is not None else keyring.decrypt(tmk_enc, b"tmk")
    _check_algorithm(algorithm, key)
    if old == algorithm and tmk is None:
        raise AdminError(f"terminal {terminal_id} uses {algorithm.upper()} already; nothing to change")
    check = tmk_check_value(key, algorithm)
    conn.execute(
        update(s.terminals).where(t.terminal_id == terminal_id).values(
            algorithm=algorithm, tmk_enc=keyring.encrypt(key, b"tmk"), tmk_kcv=check, key_scheme=None, pik_enc=None,
            mak_enc=None, tdk_enc=None, resign_requested=True, resign_reason="algorithm",
        )
    )  # fmt: skip
    _audit(conn, actor, "terminal.set_algorithm", "terminal", terminal_id, row.merchant_id,
           before={"algorithm": old}, after={"algorithm": algorithm, "tmk_kcv": check, "new_tmk": tmk is not None},
           detail=detail)  # fmt: skip
    return NewTerminal(terminal_id, check, None)


def list_terminals(conn: Connection) -> list[dict[str, Any]]:
    t, m = s.terminals.c, s.merchants.c
    q = (
        select(t.terminal_id, m.merchant_id, t.tmk_kcv, t.algorithm, t.device_serial, t.pending_serial,
               t.approved_serial, t.status, t.batch_no, t.signed_on_day, t.key_scheme, t.resign_requested,
               t.dialect)  # fmt: skip
        .join_from(s.terminals, s.merchants, t.merchant_pk == m.id)
        .order_by(t.terminal_id)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def _terminal_row(conn: Connection, terminal_id: str) -> Any:
    t, m = s.terminals.c, s.merchants.c
    row = conn.execute(
        select(t.terminal_id, m.merchant_id, t.device_serial, t.pending_serial, t.approved_serial, t.resign_requested)
        .join_from(s.terminals, s.merchants, t.merchant_pk == m.id)
        .where(t.terminal_id == terminal_id)
    ).first()
    if row is None:
        raise AdminError(f"no terminal {terminal_id} ('posgate admin terminal list' shows the terminals)")
    return row


def approve_device(conn: Connection, terminal_id: str, serial: str, *, actor: str = "cli") -> None:
    """Approve a replacement device (D7): its next sign-on succeeds and opens a new batch."""
    if not serial or len(serial) > 32:
        raise AdminError("the device serial must be 1 to 32 characters")
    row = _terminal_row(conn, terminal_id)
    if row.device_serial == serial:
        raise AdminError(f"{serial} is already the device of terminal {terminal_id}; nothing to approve")
    conn.execute(update(s.terminals).where(s.terminals.c.terminal_id == terminal_id).values(approved_serial=serial))
    _audit(conn, actor, "terminal.approve_device", "terminal", terminal_id, row.merchant_id,
           before={"device_serial": row.device_serial, "pending_serial": row.pending_serial},
           after={"approved_serial": serial})  # fmt: skip


def request_resign(conn: Connection, terminal_id: str, *, reason: str = "support", actor: str = "cli") -> None:
    """Ask the terminal to sign on again (header requirement 3 on its next reply, D2)."""
    row = _terminal_row(conn, terminal_id)
    conn.execute(update(s.terminals).where(s.terminals.c.terminal_id == terminal_id)
                 .values(resign_requested=True, resign_reason=reason))  # fmt: skip
    _audit(conn, actor, "terminal.resign", "terminal", terminal_id, row.merchant_id,
           before={"resign_requested": bool(row.resign_requested)}, after={"resign_requested": True, "reason": reason})  # fmt: skip


def set_profile(conn: Connection, terminal_id: str, name: str, *, actor: str = "cli") -> str | None:
    """Assign the dialect profile the terminal speaks (posgate.dialect.profiles); returns the
    previous one, or None when it was already ``name`` (nothing written)."""
    from posgate.dialect.profiles import PROFILES

    if name not in PROFILES:
        raise AdminError(f"no dialect profile {name!r}: one of {', '.join(PROFILES)}")
    row = _terminal_row(conn, terminal_id)
    where = s.terminals.c.terminal_id == terminal_id
    old, algorithm = conn.execute(select(s.terminals.c.dialect, s.terminals.c.algorithm).where(where)).one()
    if old == name:
        return None
    if algorithm == "sm4" and name != "cup":
        # A profile's MAC algorithm and PIN format are DES ones; an SM4 terminal's are SM4's.
        raise AdminError(f"terminal {terminal_id} uses SM4 (国密) keys: only the baseline profile cup applies to it")
    conn.execute(update(s.terminals).where(where).values(dialect=name))
    _audit(conn, actor, "terminal.set_profile", "terminal", terminal_id, row.merchant_id,
           before={"dialect": old}, after={"dialect": name})  # fmt: skip
    return str(old)


# -- the built-in issuer's cards ---------------------------------------------------------------

# ``password``: a scan-to-pay code whose wallet waits for the customer's password (09, then the
# terminal's query approves it; docs/decisions.md Q2).
CARD_STATES = ("active", "lost", "stolen", "restricted", "blocked", "password")


def add_card(conn: Connection, keyring: Keyring, pan: str, expiry: str, pin: str, *, balance: int, kind: str = "debit",
             organisation: str = "CUP", chip: bool = False, state: str = "active", per_txn_limit: int | None = None,
             actor: str = "cli", payment_code: bool = False, icc_keys: bytes | None = None) -> str:  # fmt: skip
    """Add a card to the built-in issuer; returns the masked PAN. ``payment_code``: a wallet's
    scan-to-pay code (16 to 24 digits, no Luhn digit), kept exactly as a PAN is (Q3).
    ``icc_keys``: a chip card's IMK-AC ‖ IMK-SMI ‖ IMK-SMC (48 bytes), stored sealed under the
    local master key."""
    if icc_keys is not None and (len(icc_keys) != 48 or not chip or payment_code):
        raise AdminError("chip keys are three double-length keys (48 bytes), for a chip card")
    if payment_code:
        if not (16 <= len(pan) <= 24 and pan.isdigit()):
            raise AdminError("the payment code must be 16 to 24 digits")
    elif not (13 <= len(pan) <= 19 and pan.isdigit()):
        raise AdminError("the PAN must be 13 to 19 digits")
    elif not luhn_valid(pan):
        raise AdminError("the PAN fails the Luhn check; check the digits")
    _check_digits("expiry (YYMM)", expiry, 4)
    if not (4 <= len(pin) <= 12 and pin.isdigit()):
        raise AdminError("the PIN must be 4 to 12 digits")
    if kind not in ("debit", "credit"):
        raise AdminError("kind must be debit or credit")
    if state not in CARD_STATES:
        raise AdminError(f"state must be one of {', '.join(CARD_STATES)}")
    if len(organisation) != 3:
        raise AdminError("the card organisation is 3 letters (CUP, VIS, MCC, JCB, AMX...)")
    pan_hash = keyring.pan_hash(pan)
    if conn.execute(select(s.cards.c.id).where(s.cards.c.pan_hash == pan_hash)).first():
        raise AdminError(f"card {mask_pan(pan)} exists already")
    masked = mask_pan(pan)
    conn.execute(
        insert(s.cards),
        {"pan_hash": pan_hash, "pan_masked": masked, "pan_enc": keyring.encrypt_pan(pan), "expiry": expiry, "kind": kind,
         "organisation": organisation, "chip": chip, "state": state, "balance": balance, "per_txn_limit": per_txn_limit,
         "pin_verifier": keyring.pin_verifier(pan, pin), "created_at": _now(),
         "icc_keys_enc": keyring.encrypt_key(icc_keys, b"icc") if icc_keys is not None else None},
    )  # fmt: skip
    _audit(conn, actor, "card.add", "card", masked,
           after={"kind": kind, "organisation": organisation, "state": state, "balance": balance,
                  "per_txn_limit": per_txn_limit})  # fmt: skip
    return masked


def list_cards(conn: Connection) -> list[dict[str, Any]]:
    c = s.cards.c
    q = select(c.pan_masked, c.expiry, c.kind, c.organisation, c.chip, c.state, c.balance, c.held, c.per_txn_limit).order_by(c.id)
    return [dict(r._mapping) for r in conn.execute(q)]


# -- routing (issue 13, docs/upstream.md) -----------------------------------------------------------


def list_routes(conn: Connection) -> list[dict[str, Any]]:
    r = s.routes.c
    rows = conn.execute(select(r.id, r.bin_low, r.bin_high, r.target, r.card_kind, r.priority)
                        .order_by(r.priority.desc(), r.bin_low, r.id))  # fmt: skip
    return [dict(row._mapping) for row in rows]


def add_route(conn: Connection, bin_low: str, bin_high: str | None, target: str, *, card_kind: str = "debit",
              priority: int = 0, actor: str = "cli") -> int:  # fmt: skip
    """Add a route: PANs whose leading digits lie in [bin_low, bin_high] go to ``target``
    ("issuer" or an upstream link's name). ``bin_high`` None: ``bin_low`` is a prefix."""
    from posgate.network.routing import RouteError, check_route

    try:
        low, high = check_route(bin_low, bin_high, target, card_kind)
    except RouteError as e:
        raise AdminError(str(e)) from None
    if not -1000 <= priority <= 1000:
        raise AdminError("the priority is between -1000 and 1000")
    values = {"bin_low": low, "bin_high": high, "target": target, "card_kind": card_kind, "priority": priority}
    pk = int(conn.execute(insert(s.routes).returning(s.routes.c.id), {**values, "created_at": _now()}).scalar_one())
    _audit(conn, actor, "route.add", "route", str(pk), after=values)
    return pk


def remove_route(conn: Connection, route_id: int, *, actor: str = "cli") -> None:
    r = s.routes.c
    row = conn.execute(select(r.bin_low, r.bin_high, r.target, r.card_kind, r.priority).where(r.id == route_id)).first()
    if row is None:
        raise AdminError(f"no route {route_id} ('posgate admin route list' shows them)")
    conn.execute(s.routes.delete().where(r.id == route_id))
    _audit(conn, actor, "route.remove", "route", str(route_id), before=dict(row._mapping))


def list_stand_in_limits(conn: Connection) -> list[dict[str, Any]]:
    c = s.stand_in_limits.c
    return [dict(row._mapping) for row in conn.execute(select(s.stand_in_limits).order_by(c.card_kind, c.id))]


def set_stand_in_limit(conn: Connection, card_kind: str, max_amount: int, *, merchant_id: str | None = None,
                       daily_max: int | None = None, actor: str = "cli") -> int:  # fmt: skip
    """The stand-in limit of a card kind (at one merchant, or any); replaces the previous one."""
    from posgate.network.routing import CARD_KINDS

    if card_kind not in CARD_KINDS:
        raise AdminError(f"the card kind is one of {', '.join(CARD_KINDS)}")
    if merchant_id is not None:
        _check_digits("merchant id (field 42)", merchant_id, 15)
    if max_amount < 0 or (daily_max is not None and daily_max < max_amount):
        raise AdminError("limits are amounts in fen, the daily limit at least the per-transaction one")
    c = s.stand_in_limits.c
    where = (c.card_kind == card_kind, c.merchant_id.is_(None) if merchant_id is None else c.merchant_id == merchant_id)
    conn.execute(s.stand_in_limits.delete().where(*where))
    values = {"card_kind": card_kind, "merchant_id": merchant_id, "max_amount": max_amount, "daily_max": daily_max}
    pk = int(conn.execute(insert(s.stand_in_limits).returning(c.id), values).scalar_one())
    _audit(conn, actor, "stand_in.set", "stand_in_limit", str(pk), merchant_id=merchant_id, after=values)
    return pk
