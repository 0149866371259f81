"""The pipeline's store contract (tests/host/store_contract.py) against SqlHostStore, on SQLite
and PostgreSQL: the SQL store must behave exactly like the memory store the core is tested with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import insert

from host.store_contract import CHECKS, MID, PAN, T0, TID, TMK
from posgate.store import admin, schema
from posgate.store.database import Database
from posgate.store.testing import pg_available, temp_pg_database


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def sql_store_factory(request, tmp_path) -> Iterator[Callable[[], Any]]:
    if request.param == "postgres" and not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with ExitStack() as stack:
        counter = iter(range(1000))

        def factory() -> Any:
            n = next(counter)
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / f'contract{n}.db'}"
            else:
                url = stack.enter_context(temp_pg_database())
            db = Database.open(url, key_file=tmp_path / "master.key")
            stack.callback(db.close)
            with db.engine.begin() as conn:
                admin.add_merchant(conn, MID, "演示便利店", "5411", 60, name_en="Demo Mart")
                admin.add_terminal(conn, db.keyring, TID, MID, tmk=TMK, serial="DEMO0001")
                admin.add_card(conn, db.keyring, PAN, "3012", "123456", balance=10_000_000)
                # the contract records a hit against rule 1: in SQL a hit must name an existing rule
                conn.execute(insert(schema.risk_rules), {"id": 1, "kind": "card_velocity", "response_code": "65",
                                                         "params": {"count": 3, "minutes": 10}})  # fmt: skip
            uow = db.unit_of_work(reserve=100)
            store = stack.enter_context(uow)
            return store

        yield factory


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_sql_store_contract(check: Callable[[Callable[[], Any]], None], sql_store_factory) -> None:
    assert T0.tzinfo is not None
    check(sql_store_factory)
