"""IC parameters (AIDs) and CA public keys (CAPKs) on the SQL store: read them for the host,
and provision them (``posgate admin aid|capk ...``, the console's IC parameters page).

A change (add, replace, remove) flags every terminal (``aid_pending`` / ``capk_pending``): the
host's next reply to each asks it to download again (header requirement 5 / 4, docs/dialect.md
3.12), and the terminal's end message (381 / 371) clears the flag. Every change is audited.
A CAPK whose check value is not the SHA-1 of its RID, index, modulus and exponent is refused
(``posgate.store.admin.AdminError``), nothing changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from posgate.dialect.ic_params import AidParams, Capk
from posgate.store import schema as s

_A, _C = s.ic_aids, s.ic_capks
AID_FIELDS = [f.name for f in fields(AidParams)]
# Capk field → column ("index" is a word SQL keeps for itself).
_CAPK_COLUMNS = {f.name: ("key_index" if f.name == "index" else f.name) for f in fields(Capk)}
AID_COLS = [_A.c[n] for n in AID_FIELDS]
CAPK_COLS = [_C.c[c] for c in _CAPK_COLUMNS.values()]


def aid_from_row(row: Sequence[Any]) -> AidParams:
    d = dict(zip(AID_FIELDS, row, strict=True))
    d["online_pin"] = bool(d["online_pin"])
    return AidParams(**d)


def capk_from_row(row: Sequence[Any]) -> Capk:
    return Capk(**dict(zip(_CAPK_COLUMNS, row, strict=True)))


def aid_select() -> Any:
    return select(*AID_COLS).order_by(_A.c.aid)


def capk_select() -> Any:
    return select(*CAPK_COLS).order_by(_C.c.rid, _C.c.key_index)


def list_aids(conn: Connection) -> list[AidParams]:
    return [aid_from_row(r) for r in conn.execute(aid_select())]


def list_capks(conn: Connection) -> list[Capk]:
    return [capk_from_row(r) for r in conn.execute(capk_select())]


def _now() -> datetime:
    return datetime.now(UTC)


def _error(text: str) -> Exception:
    # posgate.store.admin imports the SQL store, which imports this module's readers: late import.
    from posgate.store.admin import AdminError as Error

    return Error(text)


def _audit(conn: Connection, actor: str, action: str, object_type: str, object_id: str, **kw: Any) -> None:
    from posgate.store.admin import _audit as audit

    audit(conn, actor, action, object_type, object_id, **kw)


# The AID table's version: a ``settings`` row given a new random token in the same transaction
# as every change of ``ic_aids`` (put_aid, remove_aid: ``posgate admin aid``, the console's IC
# parameters page, the demo). The host keeps the AIDs it read with the version it read first
# (posgate.store.sql, SqlHostStore.ic_aids) and reads the table again only when the token
# differs. A token, not a counter: two concurrent changes can never write the same value.
AIDS_VERSION = "ic_aids_version"


def _bump_aids_version(conn: Connection) -> None:
    token = uuid.uuid4().hex
    if conn.execute(update(s.settings).where(s.settings.c.key == AIDS_VERSION).values(value=token)).rowcount == 0:
        conn.execute(insert(s.settings), {"key": AIDS_VERSION, "value": token})


def _flag_terminals(conn: Connection, column: str) -> None:
    conn.execute(update(s.terminals).values({column: True}))


def put_aid(conn: Connection, aid: AidParams, *, actor: str = "cli", flag: bool = True) -> AidParams:
    """Add an AID or replace its parameters. Raises ``AdminError`` for a bad value."""
    try:
        aid = aid.checked()
    except ValueError as e:
        raise _error(str(e)) from None
    old = conn.execute(select(*AID_COLS).where(_A.c.aid == aid.aid)).first()
    values = {**aid.as_dict(), "updated_at": _now()}
    if old is None:
        conn.execute(insert(_A), values)
    else:
        conn.execute(update(_A).where(_A.c.aid == aid.aid).values(values))
    _bump_aids_version(conn)
    if flag:
        _flag_terminals(conn, "aid_pending")
    _audit(conn, actor, "ic.aid.add" if old is None else "ic.aid.replace", "aid", aid.aid,
           before=None if old is None else aid_from_row(old).as_dict(), after=aid.as_dict())  # fmt: skip
    return aid


def remove_aid(conn: Connection, aid: str, *, actor: str = "cli") -> None:
    key = aid.strip().upper()
    old = conn.execute(select(*AID_COLS).where(_A.c.aid == key)).first()
    if old is None:
        raise _error(f"no IC parameters for AID {key}; see `posgate admin aid list`")
    conn.execute(delete(_A).where(_A.c.aid == key))
    _bump_aids_version(conn)
    _flag_terminals(conn, "aid_pending")
    _audit(conn, actor, "ic.aid.remove", "aid", key, before=aid_from_row(old).as_dict())


def put_capk(conn: Connection, capk: Capk, *, actor: str = "cli", flag: bool = True) -> Capk:
    """Add a CA public key or replace it. Raises ``AdminError`` when its check value is not
    the SHA-1 of its parts, or for a malformed value; nothing changes then."""
    try:
        capk = capk.checked()
    except ValueError as e:
        raise _error(f"CA public key {capk.rid.upper()}/{capk.index.upper()} refused: {e}") from None
    where = (_C.c.rid == capk.rid) & (_C.c.key_index == capk.index)
    old = conn.execute(select(*CAPK_COLS).where(where)).first()
    values = {_CAPK_COLUMNS[k]: v for k, v in capk.as_dict().items()} | {"updated_at": _now()}
    if old is None:
        conn.execute(insert(_C), values)
    else:
        conn.execute(update(_C).where(where).values(values))
    if flag:
        _flag_terminals(conn, "capk_pending")
    _audit(conn, actor, "ic.capk.add" if old is None else "ic.capk.replace", "capk", f"{capk.rid}/{capk.index}",
           after=_capk_audit(capk))  # fmt: skip
    return capk


def remove_capk(conn: Connection, rid: str, index: str, *, actor: str = "cli") -> None:
    r, i = rid.strip().upper(), index.strip().upper()
    where = (_C.c.rid == r) & (_C.c.key_index == i)
    old = conn.execute(select(*CAPK_COLS).where(where)).first()
    if old is None:
        raise _error(f"no CA public key {r}/{i}; see `posgate admin capk list`")
    conn.execute(delete(_C).where(where))
    _flag_terminals(conn, "capk_pending")
    _audit(conn, actor, "ic.capk.remove", "capk", f"{r}/{i}", before=_capk_audit(capk_from_row(old)))


def _capk_audit(c: Capk) -> dict[str, Any]:
    # The modulus is public but long: the check value identifies it in the audit trail.
    return {"rid": c.rid, "index": c.index, "expiry": c.expiry, "exponent": c.exponent, "check_value": c.check_value}
