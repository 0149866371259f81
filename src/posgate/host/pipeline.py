"""The host's transaction manager: one request in, one reply out, sans-IO.

Theory of operation
-------------------
:func:`process` is the whole host core as one function. The shell (``host/server.py``) hands
it the 6-byte message header and the body of one frame, a :class:`~posgate.host.ports.HostStore`
open in the current unit of work, the :class:`~posgate.host.ports.Issuer` and the
:class:`~posgate.host.ports.Env`; it gets back a :class:`HostReply` (the reply's header and
body, or ``body=None`` with ``close=True`` when nothing sensible can be answered).

Inside, a :class:`~posgate.host.context.Context` travels through ``routes.PIPELINE``, a list
of participants declared as data. Each participant does one thing and votes:

* ``PREPARED`` — carry on;
* ``ABORTED`` — a decline with a response code (a *result*, never an exception): the rest of
  the pipeline is skipped except the participants marked ``always`` (build the reply, record),
  and every participant that already joined gets ``abort(ctx)`` in reverse order (jPOS), so
  that e.g. an issuer authorisation is undone if a later step declines;
* ``DONE`` — the outcome is already known (a retransmission answered from the store).

A :class:`Switch` splices in the group of participants for the request's operation.

Must never: raise for bad input (a codec error becomes ``30``, an undecodable frame a close),
read the clock or a random source (``env``), do I/O other than through the store and issuer,
put card data in the trace or in an exception. An unexpected exception inside a participant
(a bug, or a store failure) is turned into a ``96`` reply with ``HostReply.error`` set; the
shell must then roll back whatever the request wrote (a savepoint per request) — see
:func:`process`.

Performance: one Context, one decode, one encode (the MAC is computed during the encode),
no copies of the request's fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from posgate.host.context import ABORTED, DONE, PREPARED, Context

if TYPE_CHECKING:
    from posgate.host.ports import Env, HostStore, Issuer
    from posgate.iso8583 import Message

__all__ = ["ABORTED", "DONE", "PREPARED", "HostReply", "Participant", "Switch", "process", "run"]


@dataclass(frozen=True, slots=True)
class HostReply:
    """What the shell sends back: ``header`` (6 bytes) + ``body``; ``body=None`` means send
    nothing. ``close`` asks the shell to close the connection after sending.

    The remaining fields are for logs and metrics (no card data): the operation name, the
    response code, the step trace and, when a participant failed unexpectedly, ``error`` (the
    exception's type name) — the shell must then roll back the request's writes."""

    header: bytes
    body: bytes | None
    close: bool = False
    operation: str | None = None
    response_code: str | None = None
    trace: list[list[str]] = field(default_factory=list)
    error: str | None = None
    # The decoded request, for the shell's masked log line (no second decode); never in a repr.
    request: Message | None = field(default=None, repr=False, compare=False)


class Participant:
    """One step. Subclasses implement :meth:`prepare`; ``always`` ones run even after a decline."""

    always = False
    name = "Participant"

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.name = cls.__name__

    def prepare(self, ctx: Context) -> str:
        raise NotImplementedError

    def abort(self, ctx: Context) -> None:
        """Undo what :meth:`prepare` did, when a later participant declines."""

    def __repr__(self) -> str:
        return self.name


class Switch:
    """Splices in the group of participants for ``ctx.op.name`` (jPOS GroupSelector)."""

    def __init__(self, groups: dict[str, Sequence[Participant]]) -> None:
        self.groups = groups

    def select(self, ctx: Context) -> Sequence[Participant]:
        return self.groups.get(ctx.op.name, ()) if ctx.op is not None else ()

    def __repr__(self) -> str:
        return f"Switch({sorted(self.groups)})"


def run(ctx: Context, pipeline: Sequence[Participant | Switch]) -> None:
    """Run ``pipeline`` over ``ctx`` (transaction-manager semantics, see the module doc)."""
    joined: list[Participant] = []
    stopped = False
    for step in pipeline:
        if isinstance(step, Switch):
            if stopped:
                continue
            for p in step.select(ctx):
                vote = p.prepare(ctx)
                if vote == PREPARED:
                    joined.append(p)
                    continue
                stopped = True
                if vote == ABORTED:
                    _abort(ctx, joined)
                break
            continue
        if stopped and not step.always:
            continue
        vote = step.prepare(ctx)
        if vote == PREPARED:
            if not step.always:
                joined.append(step)
        elif not step.always:
            stopped = True
            if vote == ABORTED:
                _abort(ctx, joined)


def _abort(ctx: Context, joined: list[Participant]) -> None:
    for p in reversed(joined):
        p.abort(ctx)
    joined.clear()


def process(frame_header: bytes, body: bytes, store: HostStore, issuer: Issuer, env: Env) -> HostReply:
    """Process one request; never raises for bad input.

    Unit of work: call it inside the shell's database transaction (many requests may share
    one commit); send the reply only after that commit. If ``reply.error`` is set, roll back
    this request's writes (savepoint) and still send the ``96`` reply, or close.
    """
    routes = _ROUTES or _load_routes()
    ctx = Context(frame_header, body, store, issuer, env)
    try:
        run(ctx, routes.PIPELINE)
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug must not kill the connection
        return _failure(ctx, exc)
    return _reply(ctx)


_ROUTES: ModuleType | None = None


def _load_routes() -> ModuleType:
    # Imported on first use, not at the top: routes imports the participants, which import us.
    # Kept after that (an import statement per request costs more than the request's bookkeeping).
    global _ROUTES
    import posgate.host.routes

    _ROUTES = posgate.host.routes
    return _ROUTES


def _reply(ctx: Context) -> HostReply:
    op = ctx.op.name if ctx.op else None
    if ctx.replay is not None:
        return HostReply(ctx.replay[:6], ctx.replay[6:], False, op, ctx.response_code, ctx.trace, None, ctx.msg)
    if ctx.reply_body is None:
        return HostReply(reply_header(ctx.header, ctx.requirement), None, True, op, ctx.response_code, ctx.trace,
                         None, ctx.msg)  # fmt: skip
    return HostReply(reply_header(ctx.header, ctx.requirement), ctx.reply_body, ctx.close, op, ctx.response_code,
                     ctx.trace, None, ctx.msg)  # fmt: skip


def _failure(ctx: Context, exc: Exception) -> HostReply:
    # Only the exception's type: its text may quote a value.
    ctx.trace.append(["process", ABORTED, f"96 unexpected {type(exc).__name__}"])
    ctx.response_code = "96"
    body = None
    try:
        from posgate.host.participants.reply import error_reply

        body = error_reply(ctx, "96")
    except Exception:  # noqa: BLE001 - nothing sensible left to answer
        body = None
    op = ctx.op.name if ctx.op else None
    return HostReply(reply_header(ctx.header, ctx.requirement), body, body is None, op, "96", ctx.trace,
                     type(exc).__name__, ctx.msg)  # fmt: skip


_DEFAULT_HEADER = bytes.fromhex("603100000000")
# (request header, requirement) → reply header: a terminal fleet sends a handful of headers, and
# each request needs its reply's twice (the reply, the stored reply). Bounded.
_REPLY_HEADERS: dict[tuple[bytes, str], bytes] = {}


def reply_header(request_header: bytes, requirement: str) -> bytes:
    """The request's header with the processing-requirement digit set (1.3, D2)."""
    key = (request_header, requirement)
    h = _REPLY_HEADERS.get(key) if type(request_header) is bytes else None  # (a bytearray: not kept)
    if h is None:
        r = request_header if len(request_header) == 6 else _DEFAULT_HEADER
        h = r[:2] + bytes(((r[2] & 0xF0) | int(requirement),)) + r[3:]
        if type(request_header) is bytes:
            if len(_REPLY_HEADERS) >= 256:
                _REPLY_HEADERS.clear()
            _REPLY_HEADERS[key] = h
    return h
