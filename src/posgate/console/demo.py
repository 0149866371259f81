"""The demo console users of ``docs/demo-data.md`` (only ever created under ``--demo``)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from posgate.console.auth import ACQUIRER_ADMIN, MERCHANT_ADMIN, MERCHANT_CLERK, SUPPORT
from posgate.console.users import create_user
from posgate.store.console_schema import users
from posgate.store.schema import merchants

DEMO_USERS = (
    # username, role, merchant_id, password, display name
    ("admin", ACQUIRER_ADMIN, None, "admin-demo-pass", "收单管理员 Acquirer admin"),
    ("support", SUPPORT, None, "support-demo-pass", "客服 Support desk"),
    ("mart-admin", MERCHANT_ADMIN, "898100012340001", "mart-demo-pass", "便利店店长 Demo Mart admin"),
    ("mart-clerk", MERCHANT_CLERK, "898100012340001", "clerk-demo-pass", "便利店收银员 Demo Mart clerk"),
    ("bistro-admin", MERCHANT_ADMIN, "898100012340002", "bistro-demo-pass", "餐厅店长 Demo Bistro admin"),
)


def provision_users(conn: Connection) -> int:
    """Create the demo users that are missing (their merchants must exist); returns how many."""
    have = set(conn.execute(select(users.c.username)).scalars())
    mids = set(conn.execute(select(merchants.c.merchant_id)).scalars())
    created = 0
    for username, role, mid, password, name in DEMO_USERS:
        if username in have or (mid is not None and mid not in mids):
            continue
        # Demo passwords are documented and fixed, so they are not "must change".
        create_user(conn, username=username, role=role, merchant_id=mid, password=password, display_name=name,
                    actor="demo", must_change=False, enforce_policy=False)  # fmt: skip
        created += 1
    return created
