"""``create_app(settings)``: the console's FastAPI application (pages, ``/api/v1``, static files).

Public routes (no login): ``/login``, ``/lang/{code}``, ``/static/*``, ``/health``, ``/metrics``,
``POST /api/v1/auth/token`` and the OpenAPI description. Everything else is behind a
:class:`~posgate.console.auth.Guard` (see ``tests/console/test_security.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from posgate.console.auth import AuthError, CsrfFailed, LoginRequired, PasswordChangeRequired, Sessions
from posgate.console.db import Database, make_engine
from posgate.console.fmt import fmt_time, yuan
from posgate.console.i18n import HTML_LANG, LANGUAGES, I18n, normalise
from posgate.console.labels import LABELS, TECHNICAL_ROLES, labeller, plain
from posgate.console.ledger import OPERATION_NAMES
from posgate.console.receipt_links import RateLimiter
from posgate.console.settings import ConsoleSettings
from posgate.console.txns import ConsoleError
from posgate.domain.response_codes import describe

HERE = Path(__file__).parent
LANG_COOKIE = "posgate_lang"
THEME_COLOUR = "#0f1b2d"  # the top bar's colour: the phone's status bar matches it
FLASH_COOKIE = "posgate_flash"
PUBLIC_PATHS = frozenset({"/login", "/lang/{code}", "/health", "/metrics", "/api/v1/auth/token", "/api/v1/openapi.json",
                          "/r/{token}", "/manifest.webmanifest"})  # fmt: skip


@dataclass
class ConsoleState:
    settings: ConsoleSettings
    db: Database
    i18n: I18n
    templates: Jinja2Templates
    sessions: Sessions
    receipt_limiter: RateLimiter

    @property
    def tz(self) -> str:
        return self.settings.timezone


def current_lang(request: Request, state: ConsoleState) -> str:
    if _is_api(request):  # API clients: English unless they ask for Chinese (Accept-Language)
        accept = request.headers.get("accept-language", "").lower()
        return "zh_CN" if accept.startswith("zh") else "en"
    return normalise(request.cookies.get(LANG_COOKIE) or state.settings.default_language)


def translator(request: Request) -> Callable[..., str]:
    state: ConsoleState = request.app.state.console
    return state.i18n.translator(current_lang(request, state))


def render(request: Request, name: str, ctx: dict[str, Any] | None = None, status: int = 200,
           lang: str | None = None) -> HTMLResponse:  # fmt: skip
    state: ConsoleState = request.app.state.console
    lang = lang or current_lang(request, state)
    _ = state.i18n.translator(lang)
    p = getattr(request.state, "principal", None)
    tz = state.tz
    flash = request.cookies.get(FLASH_COOKIE, "")
    kind, _sep, message = flash.partition(":")
    context: dict[str, Any] = {
        "_": _, "lang": lang, "html_lang": HTML_LANG[lang], "languages": LANGUAGES, "p": p,
        "csrf": p.csrf if p is not None else "", "tz": tz, "yuan": yuan,
        "t": lambda dt, seconds=True: fmt_time(dt, tz, seconds), "rc": describe,
        "op_name": lambda op: OPERATION_NAMES.get(op, (op, op))[0 if lang == "zh_CN" else 1],
        "label": labeller(_), "label_codes": lambda domain: list(LABELS[domain]), "technical": p is not None and p.role in TECHNICAL_ROLES,
        "flash": (kind, _unquote(message)) if message else None, "path": request.url.path, "demo": state.settings.demo,
        "notice_count": lambda: notice_total(state, p), "has_page": lambda path: has_page(request.app, path),
    }  # fmt: skip
    context.update(ctx or {})
    resp = state.templates.TemplateResponse(request, name, context, status_code=status)
    if flash:
        resp.delete_cookie(FLASH_COOKIE, path="/")
    return resp


def notice_total(state: ConsoleState, p: Any) -> int:
    """The header's bell: how many things want attention (0 when the notices cannot be counted)."""
    if p is None:
        return 0
    from posgate.console.notices import total

    return total(state, p)


def has_page(app: Any, path: str) -> bool:
    """Whether the application serves ``path`` (a GET page): the navigation links a page that
    another part of the project adds (``/payouts``) only when it is there."""
    return any(getattr(r, "path", None) == path and "GET" in (getattr(r, "methods", None) or ()) for r in app.routes)


def _unquote(s: str) -> str:
    from urllib.parse import unquote

    return unquote(s)


def redirect(url: str, flash: str | None = None, kind: str = "ok") -> RedirectResponse:
    resp = RedirectResponse(url, status_code=303)
    if flash:
        resp.set_cookie(FLASH_COOKIE, f"{kind}:{quote(flash)}", max_age=60, path="/", httponly=True, samesite="strict")
    return resp


def _acquirer_settings(cfg: ConsoleSettings, db: Database) -> None:
    """The acquirer's time zone and demo flag from the ``settings`` table (what the host uses too);
    backups next to the SQLite file unless a directory was given."""
    from sqlalchemy import select

    from posgate.store.schema import settings as settings_table

    try:
        with db.read() as conn:
            rows = dict(conn.execute(select(settings_table.c.key, settings_table.c.value)).all())
    except Exception:  # noqa: BLE001 - a database not migrated yet: keep the defaults
        rows = {}
    if rows.get("timezone"):
        cfg.timezone = rows["timezone"]
    if rows.get("demo") == "1":
        cfg.demo = True
    if not cfg.public_url and rows.get("public_url"):
        cfg.public_url = rows["public_url"]
    if cfg.backup_dir == Path("backups") and db.is_sqlite and db.engine.url.database not in (None, "", ":memory:"):
        cfg.backup_dir = Path(str(db.engine.url.database)).resolve().parent / "backups"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(settings: Any = None) -> FastAPI:
    cfg = ConsoleSettings.coerce(settings)
    engine = cfg.engine or make_engine(cfg.db_url)
    db = Database(engine)
    _acquirer_settings(cfg, db)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["static_version"] = "1"
    templates.env.filters["plain"] = plain
    state = ConsoleState(
        settings=cfg, db=db, i18n=I18n(), templates=templates,
        sessions=Sessions(db, timedelta(minutes=cfg.session_idle_minutes), timedelta(hours=cfg.session_max_hours)),
        receipt_limiter=RateLimiter(cfg.receipt_rate_per_minute, 60.0),
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if cfg.scheduler:
            from posgate.console.scheduler import run_scheduler

            task = asyncio.create_task(run_scheduler(state))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    app = FastAPI(
        title="posgate console API", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        description="The merchant console's JSON API. Authenticate with POST /api/v1/auth/token and send "
        "`Authorization: Bearer <access_token>`. Amounts are integers in fen; times are UTC ISO 8601.",
    )  # fmt: skip
    app.state.console = state
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                     "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")  # fmt: skip
        if not request.url.path.startswith("/static/"):
            h.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        if _is_api(request):
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)
        if isinstance(exc, PasswordChangeRequired):
            return redirect("/password")
        if isinstance(exc, LoginRequired):
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)
        _ = translator(request)
        msg = _("This form has expired. Reload the page and try again.") if isinstance(exc, CsrfFailed) else _(
            "Your role does not allow this page or action.")  # fmt: skip
        return render(request, "error.html", {"title": _("Not allowed"), "message": msg}, status=exc.status)

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError) -> Response:
        _ = translator(request)
        msg = _(exc.message, **exc.fields)
        if _is_api(request):
            return JSONResponse({"detail": msg}, status_code=exc.status)
        title = _("Not found") if exc.status == 404 else _("Cannot do this")
        return render(request, "error.html", {"title": title, "message": msg}, status=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        _ = translator(request)
        title = _("Not found") if exc.status_code == 404 else str(exc.status_code)
        return render(request, "error.html", {"title": title, "message": _("The page or record does not exist, or is not yours.")
                      if exc.status_code == 404 else str(exc.detail)}, status=exc.status_code)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        _ = translator(request)
        return render(request, "error.html", {"title": _("Cannot do this"), "message": _("Some fields are missing or invalid.")},
                      status=422)  # fmt: skip

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        try:
            from posgate.host import metrics as host_metrics

            fn = getattr(host_metrics, "health", None)
        except ImportError:
            fn = None
        try:
            with db.read() as conn:
                conn.exec_driver_sql("SELECT 1")
            console_db = "ok"
        except Exception as e:  # noqa: BLE001 - health reports, never raises
            console_db = f"error: {type(e).__name__}"
        result: dict[str, Any] = {"status": "ok" if console_db == "ok" else "error"}
        if fn is not None:
            host = fn()
            if isinstance(host, dict) and host.get("state") not in (None, "starting", "stopped"):
                result = dict(host)  # running inside ``posgate serve``: the host's view decides
        result["console"] = {"database": console_db}
        # "degraded" (an upstream link down: stand-in still approves) is served, not failed
        return JSONResponse(result, status_code=200 if result.get("status") in ("ok", "degraded") else 503)

    @app.get("/manifest.webmanifest", include_in_schema=False)
    def manifest() -> Response:
        """The web app manifest: the console installs on a phone's home screen (standalone)."""
        import json

        body = {
            "name": "商户收单 · posgate merchant", "short_name": "商户收单", "lang": "zh-CN",
            "description": "posgate merchant console", "start_url": "/?source=homescreen", "scope": "/",
            "display": "standalone", "orientation": "portrait", "theme_color": THEME_COLOUR, "background_color": "#f4f6f9",
            "icons": [{"src": f"/static/icons/icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png", "purpose": "any maskable"}
                      for n in (192, 512)],
        }  # fmt: skip
        return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            from posgate.host import metrics as host_metrics
        except ImportError:
            return PlainTextResponse("# the host's metrics are not available in this build\n")
        registry = getattr(host_metrics, "REGISTRY", None) or getattr(host_metrics, "registry", None)
        data = generate_latest(registry) if registry is not None else generate_latest()
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    from posgate.console import api, clearing, notices, payouts_web, upstream, web
    from posgate.store.payouts import count_failed_payouts

    # the bank's refused payouts as a notice (registering twice changes nothing)
    notices.register_failed_payouts(count_failed_payouts)
    upstream.register_notices()  # a link down, reversals and advices waiting to go up (staff)
    app.include_router(web.router)
    app.include_router(clearing.router)
    app.include_router(payouts_web.router)
    app.include_router(payouts_web.api_router)
    app.include_router(upstream.router)
    app.include_router(upstream.api_router)
    app.include_router(api.router)
    return app
