"""Catalog completeness, and the console on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import create_engine, text

from posgate.console.i18n import LOCALE_DIR, I18n, used_msgids


def test_every_message_has_a_chinese_translation() -> None:
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string}
    missing = sorted(used_msgids() - translated - {"...", "Hello {name}"})
    assert not missing, f"add these to locale/zh_CN/LC_MESSAGES/messages.po: {missing}"
    t = I18n().translator("zh_CN")
    assert t("{n} transactions", n=3) == "共 3 笔交易"
    assert I18n().translator("en")("merchant_clerk") == "Clerk"


@pytest.mark.postgres
def test_console_on_postgres(tmp_path: Path) -> None:
    from posgate.console.app import create_app
    from posgate.console.settings import ConsoleSettings
    from posgate.store.database import Database
    from posgate.store.demo import provision_demo

    from .helpers import TestClient, login, seed
    from .test_api import signature_png

    base = "postgresql://postgres@127.0.0.1:5432"
    name = f"console_pg_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable: {e}")
    try:
        db = Database.open(f"{base}/{name}", key_file=tmp_path / "k.key")
        provision_demo(db.engine, db.keyring)
        ids = seed(db.engine, db.keyring)
        app = create_app(ConsoleSettings(engine=db.engine, keyring=db.keyring, backup_dir=tmp_path, scheduler=False))
        c = login(TestClient(app, base_url="https://testserver"), "admin")
        for url in ["/", "/transactions?card=0012&result=approved", f"/transactions/{ids.mart_unsigned}", "/unsigned",
                    "/makeup", "/refunds", "/terminals", "/terminals/10000002", "/sign-ons", "/settlement", "/audit"]:
            assert c.get(url).status_code == 200, url
        api = TestClient(app, base_url="https://testserver")
        tok = api.post("/api/v1/auth/token", json={"username": "mart-clerk", "password": "clerk-demo-pass"}).json()
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        r = api.post(f"/api/v1/transactions/{ids.mart_unsigned}/signature", content=signature_png(),
                     headers={**h, "Content-Type": "image/png"})  # fmt: skip
        assert r.status_code == 201
        e = api.post("/api/v1/makeup-entries", headers=h, json={"kind": "missing_sale", "terminal_id": "10000001",
                                                                "amount": 100, "reason": "slip"}).json()  # fmt: skip
        tok2 = api.post("/api/v1/auth/token", json={"username": "mart-admin", "password": "mart-demo-pass"}).json()
        r = api.post(f"/api/v1/makeup-entries/{e['id']}/approve", json={},
                     headers={"Authorization": f"Bearer {tok2['access_token']}"})  # fmt: skip
        assert r.status_code == 200 and r.json()["result_txn_id"]
        # login throttling on PostgreSQL: one address failing admin's password does not lock others out
        attacker = TestClient(app, base_url="https://testserver", client=("203.0.113.7", 1))
        for _ in range(8):
            assert attacker.post("/api/v1/auth/token", json={"username": "admin", "password": "wrong-pass-x"}).status_code == 401
        assert attacker.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-demo-pass"}).status_code == 401
        other = TestClient(app, base_url="https://testserver", client=("198.51.100.1", 1))
        assert other.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-demo-pass"}).status_code == 200
        db.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
