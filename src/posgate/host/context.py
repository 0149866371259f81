"""The per-request Context: everything one request carries through the pipeline.

Theory of operation
-------------------
``process()`` builds exactly one :class:`Context` per request and hands it to every
participant in turn (jPOS ``TransactionManager`` style). Participants read the request
(``msg``, ``op``, ``terminal``...), write their findings back (``pan``, ``original``,
``issuer_result``, reply fields in ``reply``) and vote with :meth:`Context.prepared`,
:meth:`Context.decline` or :meth:`Context.done`, each of which appends one coded line to
``trace``. The trace ``[[participant, vote, detail], ...]`` is stored with the transaction
record: it is the answer to "why was this declined?".

Must never: hold card data beyond the request (``pan``, ``expiry`` and ``pin_block`` live
only here and are never put in the trace, a record or an exception), read the clock or a
random source (``now``/``local`` come from ``env.now()`` once per request).

Invariants: ``response_code`` is None until a participant decides; the first decline wins
(later participants of the group do not run); ``requirement`` only ever rises to a more
urgent processing requirement (3 beats 1 beats 4 beats 5 beats 2 beats 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from posgate.dialect.fields import Field60, Field61
from posgate.dialect.operations import Operation
from posgate.dialect.profiles import PROFILES, Profile
from posgate.iso8583 import FieldValue, Message

if TYPE_CHECKING:
    from posgate.host.ports import (
        Env,
        HostStore,
        Issuer,
        IssuerResult,
        MerchantRecord,
        TerminalRecord,
        TxnRecord,
    )

PREPARED, ABORTED, DONE = "PREPARED", "ABORTED", "DONE"

_ZONES: dict[str, tzinfo] = {}


def zone(name: str) -> tzinfo:
    """The acquirer's time zone, resolved once per process."""
    z = _ZONES.get(name)
    if z is None:
        z = _ZONES[name] = ZoneInfo(name)
    return z


class Context:
    """One request on its way through the pipeline. Not thread-safe; never shared."""

    __slots__ = (
        "store", "issuer", "env", "header", "body", "msg", "op", "now", "local", "day",
        "terminal", "merchant", "batch_no", "stan", "response_code", "reply", "requirement",
        "trace", "close", "pan", "expiry", "pan_hash", "pan_masked", "card_organisation",
        "pin_block", "original", "issuer_result", "auth_code", "rrn", "status", "amount",
        "record", "record_mti", "previous", "replay", "mac_ok", "reply_body", "txn_id",
        "rejected", "extra", "error", "sign_on_cause", "source", "digest", "siblings", "f60",
        "f61", "dialect", "found",
    )  # fmt: skip

    def __init__(self, header: bytes, body: bytes, store: HostStore, issuer: Issuer, env: Env) -> None:
        self.store = store
        self.issuer = issuer
        self.env = env
        self.header = header
        self.body = body
        self.msg: Message | None = None
        self.op: Operation | None = None
        self.now: datetime = env.now()
        self.local: datetime = self.now.astimezone(zone(env.timezone))
        self.day = self.local.date().isoformat()
        self.terminal: TerminalRecord | None = None
        self.merchant: MerchantRecord | None = None
        self.batch_no = ""  # 60.2 of the request
        self.stan = ""
        self.response_code: str | None = None
        self.reply: dict[int, FieldValue] = {}
        self.requirement = "0"
        self.trace: list[list[str]] = []
        self.close = False
        self.pan: str | None = None
        self.expiry: str | None = None
        self.pan_hash: str | None = None
        self.pan_masked: str | None = None
        self.card_organisation: str | None = None
        self.pin_block: bytes | None = None  # translated to the issuer zone key; never stored
        self.original: TxnRecord | None = None
        self.issuer_result: IssuerResult | None = None
        self.auth_code: str | None = None
        self.rrn: str | None = None
        self.status: str | None = None  # record status; None = derive from the response code
        self.amount = 0
        self.record = False  # whether Record writes a transaction row for this request
        self.record_mti: str | None = None
        self.previous: TxnRecord | None = None  # same TID + batch + STAN + MTI, if any
        self.replay: bytes | None = None  # stored reply (header + body) of a retransmission
        self.mac_ok = False  # the request carried a valid MAC: approved replies get one
        self.reply_body: bytes | None = None
        self.txn_id: int | None = None
        self.rejected = False  # declined at the gate: nothing was executed
        self.extra: dict[str, Any] = {}
        self.error: str | None = None
        self.sign_on_cause: str | None = None
        self.source = "terminal"
        self.digest = ""  # sha256 of the request's MAC block, MTI..63 (D8)
        self.siblings: Sequence[TxnRecord] = ()  # records with this TID + batch + STAN
        self.f60: Field60 | None = None
        self.f61: Field61 | None = None
        # The dialect profile the request was decoded with (the terminal's; baseline until known).
        self.dialect: Profile = PROFILES["cup"]
        # The terminal record Decode looked up to learn the profile, handed on to IdentifyTerminal
        # (one lookup per request): a 1-tuple once looked up, () before.
        self.found: tuple[TerminalRecord | None, ...] = ()

    # -- votes ------------------------------------------------------------------------
    def prepared(self, who: str, detail: str = "") -> str:
        self.trace.append([who, PREPARED, detail])
        return PREPARED

    def decline(self, who: str, code: str, detail: str = "") -> str:
        """A business decline (a result, not an exception): sets 39 and stops the group."""
        self.response_code = code
        self.trace.append([who, ABORTED, f"{code} {detail}" if detail else code])
        return ABORTED

    def done(self, who: str, detail: str = "") -> str:
        """The outcome is settled (e.g. a retransmission answered from the store)."""
        self.trace.append([who, DONE, detail])
        return DONE

    def require(self, requirement: str) -> None:
        """Raise the header's processing requirement (D2); 3 (sign on) outranks 1 (parameters)."""
        if _RANK[requirement] > _RANK[self.requirement]:
            self.requirement = requirement

    # -- helpers ------------------------------------------------------------------------
    @property
    def approved(self) -> bool:
        return self.response_code == "00"

    def __repr__(self) -> str:  # never the request's values
        op = self.op.name if self.op else None
        return f"Context(op={op}, response_code={self.response_code}, steps={len(self.trace)})"


# 3 sign on, 1 parameters, 4 IC public keys, 5 IC parameters, 2 status upload, 0 nothing.
_RANK = {"0": 0, "2": 1, "5": 2, "4": 3, "1": 4, "3": 5}
