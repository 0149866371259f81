"""Console test fixtures: a migrated SQLite database with the demo data (merchants, terminals,
cards, console users) plus transactions, sign-ons, a settlement and differences inserted through
the schema tables; an app per test on a private copy of that database; login helpers; a live
uvicorn server for the browser tests."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

with warnings.catch_warnings():  # Starlette 1.x asks for httpx2; httpx works the same for these tests
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from posgate.console.app import create_app
from posgate.console.fmt import today
from posgate.console.settings import ConsoleSettings
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo

TZ = "Asia/Shanghai"
MART, BISTRO = "898100012340001", "898100012340002"
PASSWORDS = {
    "admin": "admin-demo-pass",
    "support": "support-demo-pass",
    "mart-admin": "mart-demo-pass",
    "mart-clerk": "clerk-demo-pass",
    "bistro-admin": "bistro-demo-pass",
}
ROLE_USER = {"acquirer_admin": "admin", "support": "support", "merchant_admin": "mart-admin", "merchant_clerk": "mart-clerk"}


@dataclass
class Seed:
    """Ids of the rows the fixtures insert (same in every copy of the template database)."""

    mart_unsigned: int  # approved sale, terminal 10000001, unsigned, RRN 000000000101
    mart_signed: int  # approved sale, signed
    mart_declined: int
    mart_sale_for_refund: int  # approved sale 200.00 on the 6212... card
    mart_old_unsigned: int  # approved 3 days ago, unsigned (overdue)
    bistro_unsigned: int  # Demo Bistro, terminal 20000001
    settlement_id: int
    difference_id: int  # missing_on_host on terminal 10000002
    bistro_difference_id: int


def _txn(conn: Any, keyring: Any, *, tid: str, mid: str, stan: str, amount: int, rc: str = "00", op: str = "sale",
         pan: str = "6212142000000000012", signed: bool = False, when: datetime | None = None, rrn: str | None = None,
         batch: str = "000001") -> int:  # fmt: skip
    from posgate.domain.masking import mask_pan

    when = when or datetime.now(UTC)
    values = dict(
        created_at=when, day=today(TZ, when), terminal_id=tid, merchant_id=mid, batch_no=batch, stan=stan, mti="0200",
        operation=op, processing_code="000000", amount=amount, currency="156", pan_hash=keyring.pan_hash(pan),
        pan_masked=mask_pan(pan), pan_enc=keyring.encrypt_pan(pan), card_organisation="CUP", entry_mode="021",
        response_code=rc, auth_code="123456" if rc == "00" else None, rrn=rrn or f"0000000{stan[-5:]}",
        status="approved" if rc == "00" else "declined", refunded_amount=0, request_digest=f"seed-{tid}-{stan}",
        trace=[["Decode", "prepared", ""], ["AuthorizeWithIssuer", "prepared" if rc == "00" else "aborted", rc],
               ["RecordTransaction", "prepared", ""]],
        signed=signed, source="terminal", operator="01",
    )  # fmt: skip
    return int(conn.execute(insert(s.transactions).values(**values).returning(s.transactions.c.id)).scalar_one())


def _totals(debit: int, debits: int, credit: int, credits: int) -> dict[str, Any]:
    """Field 48 as the host stores it (``totals_dict``): CUP (domestic) and foreign sides, fen."""
    return {"domestic": {"debit_amount": debit, "debit_count": debits, "credit_amount": credit, "credit_count": credits, "flag": "0"},
            "foreign": {"debit_amount": 0, "debit_count": 0, "credit_amount": 0, "credit_count": 0, "flag": "0"}}  # fmt: skip


def seed(engine: Engine, keyring: Any) -> Seed:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        a = _txn(conn, keyring, tid="10000001", mid=MART, stan="000101", amount=12_34, rrn="000000000101")
        b = _txn(conn, keyring, tid="10000001", mid=MART, stan="000102", amount=56_78, signed=True)
        c = _txn(conn, keyring, tid="10000001", mid=MART, stan="000103", amount=99_00, rc="51", pan="6217000000000000020")
        d = _txn(conn, keyring, tid="10000002", mid=MART, stan="000104", amount=200_00)
        e = _txn(conn, keyring, tid="10000001", mid=MART, stan="000001", amount=88_00, when=now - timedelta(days=3), batch="000000")
        f = _txn(conn, keyring, tid="20000001", mid=BISTRO, stan="000201", amount=150_00, pan="6225880000000000010")
        for day_back in range(1, 8):  # a history for the chart
            _txn(conn, keyring, tid="10000002", mid=MART, stan=f"0003{day_back:02d}", amount=1000 * day_back + 5,
                 signed=True, when=now - timedelta(days=day_back), batch="000000")  # fmt: skip
        for tid, mid, serial in (("10000001", MART, "DEMO0001"), ("20000001", BISTRO, "DEMO0003")):
            conn.execute(insert(s.sign_ons).values(
                at=now - timedelta(hours=2), day=today(TZ), terminal_id=tid, merchant_id=mid, kind="sign_on",
                cause="daily", operator="01", device_serial=serial, key_scheme="003", batch_no="000001", stan="000100",
                response_code="00"))  # fmt: skip
            conn.execute(s.terminals.update().where(s.terminals.c.terminal_id == tid).values(
                signed_on_day=today(TZ), last_sign_on_at=now - timedelta(hours=2), operator="01", key_scheme="003",
                last_response_codes=["00", "00", "51", "00"]))  # fmt: skip
        conn.execute(insert(s.sign_ons).values(
            at=now - timedelta(hours=1), day=today(TZ), terminal_id="10000002", merchant_id=MART, kind="refused",
            cause="device_serial", operator="01", device_serial="NEWDEV99", key_scheme="003", batch_no="000001",
            stan="000050", response_code="97", detail="serial NEWDEV99 is not the recorded DEMO0002"))  # fmt: skip
        conn.execute(s.terminals.update().where(s.terminals.c.terminal_id == "10000002").values(pending_serial="NEWDEV99"))
        sid = conn.execute(insert(s.settlements).values(
            at=now - timedelta(days=1), day=today(TZ, now - timedelta(days=1)), terminal_id="10000002", merchant_id=MART,
            batch_no="000000", stan="000399", terminal_totals=_totals(3_000_00, 3, 12_34, 1),
            host_totals=_totals(2_500_00, 2, 12_34, 1), domestic_result="2", foreign_result="1",
            uploaded=3, upload_end="202", status="unbalanced").returning(s.settlements.c.id)).scalar_one()  # fmt: skip
        did = conn.execute(insert(s.differences).values(
            settlement_id=sid, terminal_id="10000002", merchant_id=MART, batch_no="000000", stan="000398",
            kind="missing_on_host", terminal_amount=500_00, host_amount=None, pan_masked="621214*********0012",
            status="open").returning(s.differences.c.id)).scalar_one()  # fmt: skip
        sid2 = conn.execute(insert(s.settlements).values(
            at=now - timedelta(days=1), day=today(TZ, now - timedelta(days=1)), terminal_id="20000001", merchant_id=BISTRO,
            batch_no="000000", stan="000499", terminal_totals={}, host_totals={}, domestic_result="2", foreign_result="1",
            uploaded=1, upload_end="202", status="unbalanced").returning(s.settlements.c.id)).scalar_one()  # fmt: skip
        did2 = conn.execute(insert(s.differences).values(
            settlement_id=sid2, terminal_id="20000001", merchant_id=BISTRO, batch_no="000000", stan="000498",
            kind="amount_mismatch", terminal_amount=10_00, host_amount=12_00, transaction_id=f,
            status="open").returning(s.differences.c.id)).scalar_one()  # fmt: skip
    return Seed(a, b, c, d, e, f, int(sid), int(did), int(did2))


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seed]:
    d = tmp_path_factory.mktemp("console-template")
    path = d / "posgate.db"
    database = Database.open(f"sqlite:///{path}", key_file=d / "posgate.db.key")
    provision_demo(database.engine, database.keyring)
    ids = seed(database.engine, database.keyring)
    database.close() if hasattr(database, "close") else database.engine.dispose()
    return path, ids


@dataclass
class Env:
    app: Any
    db: Database
    ids: Seed
    path: Path
    backup_dir: Path

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="https://testserver")


@pytest.fixture
def env(template_db: tuple[Path, Seed], tmp_path: Path) -> Iterator[Env]:
    src, ids = template_db
    path = tmp_path / "posgate.db"
    shutil.copy(src, path)
    shutil.copy(src.with_name("posgate.db.key"), tmp_path / "posgate.db.key")
    database = Database.open(f"sqlite:///{path}", key_file=tmp_path / "posgate.db.key", migrate=False)
    settings = ConsoleSettings(engine=database.engine, keyring=database.keyring, backup_dir=tmp_path / "backups",
                               scheduler=False, lockout_threshold=5)  # fmt: skip
    app = create_app(settings)
    yield Env(app, database, ids, path, tmp_path / "backups")
    database.engine.dispose()


def login(client: TestClient, username: str, password: str | None = None) -> TestClient:
    client.cookies.clear()
    client.get("/login")
    token = client.cookies.get("posgate_login_csrf")
    r = client.post("/login", data={"username": username, "password": password or PASSWORDS[username],
                                    "csrf_token": token, "next": "/"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text[:500]
    return client


def csrf_of(client: TestClient, page: str = "/") -> str:
    import re

    html = client.get(page).text
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def api_token(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORDS[username]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def txn_row(db: Database, txn_id: int) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(select(s.transactions).where(s.transactions.c.id == txn_id)).mappings().first()


# ------------------------------------------------------------------ live server for the browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    url: str
    env: Env


@pytest.fixture
def live(env: Env) -> Iterator[Live]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(env.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield Live(f"http://127.0.0.1:{port}", env)
    server.should_exit = True
    thread.join(5)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: sync_playwright() keeps an event loop running in the main
    # thread while it is open, and later tests that call asyncio.run() must not see it.
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    ctx.close()


def browser_login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
