"""The upstream links' status and the store-and-forward queue, for the acquirer's staff.

``posgate serve --upstream NAME=HOST:PORT`` runs the links in the console's own process and hands
the console its :class:`~posgate.network.upstream.Upstream` (``settings.upstream``). This module
only reads its snapshot (:meth:`Upstream.status`, plain data from ``posgate.network.status``)
and shows it: the page ``/upstream``, ``GET /api/v1/upstream`` and two notices for the bell —
a link down, and reversals or advices waiting longer than ``saf_stale_minutes`` to go up.

Staff only (acquirer administrator, support desk): merchants have no business with the links.
Card numbers in the queue are masked in the snapshot already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from posgate.console import notices
from posgate.console.app import ConsoleState, render, translator
from posgate.console.auth import ACQUIRER, Guard, Principal

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1")
Staff = Annotated[Principal, Depends(Guard(*ACQUIRER))]
StaffApi = Annotated[Principal, Depends(Guard(*ACQUIRER, api=True))]

STALE_MINUTES = 5  # a queued entry older than this is a notice (settings.saf_stale_minutes)


def _(msgid: str) -> str:
    return msgid


LINK_DOWN = _("Upstream links down ({n}): {names}")
SAF_STALE = _("{n} reversals or advices have waited more than {minutes} minutes to go up")


def snapshot(settings: Any, limit: int = 50) -> Any:
    """The host's upstream status, or None (no link configured, or not inside the host)."""
    up = getattr(settings, "upstream", None)
    return None if up is None else up.status(limit=limit)


def stale_minutes(settings: Any) -> int:
    v = getattr(settings, "saf_stale_minutes", None)
    return STALE_MINUTES if v is None else max(0, int(v))


# ------------------------------------------------------------------ notices


def links_down(conn: Connection, p: Principal, settings: Any) -> notices.Notice | None:
    if not p.is_acquirer:
        return None
    st = snapshot(settings, limit=0)
    if st is None:
        return None
    down = st.down
    return notices.Notice("upstream_down", len(down), LINK_DOWN, "/upstream", {"names": ", ".join(down)}, tuple(down))


def saf_stale(conn: Connection, p: Principal, settings: Any) -> notices.Notice | None:
    up = getattr(settings, "upstream", None)
    if not p.is_acquirer or up is None:
        return None
    minutes = stale_minutes(settings)
    by_link = up.stale(minutes * 60.0)
    return notices.Notice("upstream_queue", sum(by_link.values()), SAF_STALE, "/upstream", {"minutes": minutes},
                          tuple(sorted(by_link)))  # fmt: skip


def register_notices() -> None:
    notices.register(links_down)
    notices.register(saf_stale)


# ------------------------------------------------------------------ page and API


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


# Plain ``def`` handlers: FastAPI runs them in its thread pool (the snapshot reads the journal).
@router.get("/upstream", response_class=HTMLResponse)
def upstream_page(request: Request, p: Staff) -> Response:
    settings = _state(request).settings
    st = snapshot(settings)
    gettext = translator(request)

    def age_text(now: datetime, then: datetime | None) -> str:
        return "—" if then is None else duration(gettext, (now - then).total_seconds())

    return render(request, "upstream.html", {
        "st": st, "in_host": bool(getattr(settings, "in_host", False)), "stale_minutes": stale_minutes(settings),
        "age_text": age_text,
    })  # fmt: skip


def duration(gettext: Any, seconds: float) -> str:
    """``42 s``, ``7 min``, ``3 h 5 min``, ``2 d 4 h`` (translated)."""
    s = max(0, int(seconds))
    if s < 60:
        return str(gettext("{n} s", n=s))
    if s < 3600:
        return str(gettext("{n} min", n=s // 60))
    if s < 86_400:
        return str(gettext("{h} h {m} min", h=s // 3600, m=s % 3600 // 60))
    return str(gettext("{d} d {h} h", d=s // 86_400, h=s % 86_400 // 3600))


@api_router.get("/upstream", tags=["upstream"])
def upstream_api(request: Request, p: StaffApi) -> dict[str, Any]:
    """The upstream links (state, since when, last message, echo and error, requests in flight)
    and each link's store-and-forward queue (pending reversals and advices, oldest age, the
    first 50 entries with masked PAN). ``configured`` is false when the host has no link.
    Staff only. Times are UTC ISO 8601, amounts in fen."""
    from posgate.network.status import as_json

    settings = _state(request).settings
    out = as_json(snapshot(settings))
    out["in_host"] = bool(getattr(settings, "in_host", False))
    out["stale_minutes"] = stale_minutes(settings)
    return out
