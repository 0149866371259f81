"""The SQL host store reads the IC parameters and CA public keys the host downloads (SQLite and
PostgreSQL), and a terminal's pending flags (header requirement 4 / 5) round-trip."""

from __future__ import annotations

from dataclasses import replace

from posgate.dialect.ic_params import DEMO_AIDS, UNIONPAY_TEST_CAPKS
from posgate.store import ic_params
from posgate.store.demo import provision_demo


def test_sql_store_reads_the_demo_lists_and_flags(db) -> None:
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as store:
        assert list(store.ic_aids()) == list(DEMO_AIDS)
        assert list(store.ic_capks()) == list(UNIONPAY_TEST_CAPKS)
        t = store.terminal("10000001")
        assert t is not None and not t.capk_pending and not t.aid_pending
    with db.engine.begin() as conn:
        ic_params.put_aid(conn, replace(DEMO_AIDS[0], cvm_limit=30000), actor="test")
    with db.unit_of_work() as store:
        assert store.ic_aids()[0].cvm_limit == 30000
        t = store.terminal("10000001")
        assert t is not None and t.aid_pending and not t.capk_pending
        store.update_terminal("10000001", aid_pending=False)
    with db.unit_of_work() as store:
        t = store.terminal("10000001")
        assert t is not None and not t.aid_pending
