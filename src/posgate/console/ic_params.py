"""The console's IC parameters page (acquirer administrators and support): the AIDs with their
contactless limits and the CA public keys the host downloads to terminals (docs/dialect.md
3.12). Changes go through ``posgate.store.ic_params`` (the same code as ``posgate admin aid|capk``):
audited under the console user's name, every terminal asked to download again. A CAPK whose check
value is not the SHA-1 of its parts is refused with both values named."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from posgate.console.auth import Principal
from posgate.console.fmt import parse_yuan
from posgate.console.txns import ConsoleError
from posgate.dialect.ic_params import AidParams, Capk, capk_check_value
from posgate.domain.money import fen_to_yuan
from posgate.store import ic_params as store

_TAG = re.compile(r"\(([0-9A-F]{4})\)")
# One literal: the catalogue's msgids are collected from the source.
MISMATCH = "Check value {given} does not match the key: the SHA-1 of its RID, index, modulus and exponent is {computed}. Nothing was saved."  # noqa: E501


def page(conn: Connection) -> dict[str, Any]:
    aids = [{**a.as_dict(), **{k: fen_to_yuan(getattr(a, k)) for k in ("cvm_limit", "cl_transaction_limit",
             "cl_floor_limit", "floor_limit")}} for a in store.list_aids(conn)]  # fmt: skip
    capks = [{**c.as_dict(), "bits": len(c.modulus) * 4, "modulus_short": f"{c.modulus[:8]}…{c.modulus[-8:]}"}
             for c in store.list_capks(conn)]  # fmt: skip
    return {"aids": aids, "capks": capks}


def _limit(text: str, tag: str, default: int) -> int:
    text = text.strip()
    if not text:
        return default
    if text.replace("0", "").replace(".", "") == "":
        return 0
    try:
        return parse_yuan(text)
    except ValueError:
        raise ConsoleError("The value of {tag} is not valid.", tag=tag) from None


def _invalid(e: ValueError) -> ConsoleError:
    m = _TAG.search(str(e))
    return ConsoleError("The value of {tag} is not valid.", tag=m.group(1) if m else "9F06")


def save_aid(conn: Connection, p: Principal, form: dict[str, Any]) -> AidParams:
    """Add an AID or change its limits (the other parameters keep their values, or the defaults)."""
    aid = str(form.get("aid", "")).strip().upper()
    current = next((a for a in store.list_aids(conn) if a.aid == aid), None) or AidParams(aid=aid)
    new = replace(
        current,
        cvm_limit=_limit(str(form.get("cvm_limit", "")), "DF21", current.cvm_limit),
        cl_transaction_limit=_limit(str(form.get("cl_transaction_limit", "")), "DF20", current.cl_transaction_limit),
        cl_floor_limit=_limit(str(form.get("cl_floor_limit", "")), "DF19", current.cl_floor_limit),
        floor_limit=_limit(str(form.get("floor_limit", "")), "9F1B", current.floor_limit),
    )
    try:
        new = new.checked()
    except ValueError as e:
        raise _invalid(e) from None
    return store.put_aid(conn, new, actor=p.username)


def remove_aid(conn: Connection, p: Principal, aid: str) -> None:
    if not any(a.aid == aid.upper() for a in store.list_aids(conn)):
        raise ConsoleError("No IC parameters for {aid}.", 404, aid=aid.upper())
    store.remove_aid(conn, aid, actor=p.username)


def save_capk(conn: Connection, p: Principal, form: dict[str, Any]) -> Capk:
    key = Capk(**{k: "".join(str(form.get(k, "")).split()).upper() for k in
                  ("rid", "index", "expiry", "modulus", "exponent", "check_value")})  # fmt: skip
    try:
        key.checked()
    except ValueError as e:
        if "does not match" in str(e):
            computed = capk_check_value(key.rid, key.index, key.modulus, key.exponent)
            raise ConsoleError(MISMATCH, given=key.check_value, computed=computed) from None
        if "YYYYMMDD" in str(e):
            raise ConsoleError("The value of {tag} is not valid.", tag="DF05") from None
        raise _invalid(e) from None
    return store.put_capk(conn, key, actor=p.username)


def remove_capk(conn: Connection, p: Principal, rid: str, index: str) -> None:
    if not any(c.key == (rid.upper(), index.upper()) for c in store.list_capks(conn)):
        raise ConsoleError("No CA public key {rid}/{index}.", 404, rid=rid.upper(), index=index.upper())
    store.remove_capk(conn, rid, index, actor=p.username)
