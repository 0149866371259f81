from __future__ import annotations

from .helpers import Env, login


def test_pages_render_for_admin(env: Env) -> None:
    c = login(env.client(), "admin")
    for url in ["/", "/transactions", f"/transactions/{env.ids.mart_unsigned}", "/unsigned",
                f"/transactions/{env.ids.mart_unsigned}/sign", "/makeup", "/makeup/new", "/refunds", "/terminals",
                "/terminals/10000002", "/sign-ons", "/settlement", f"/settlement/batches/{env.ids.settlement_id}",
                "/merchants", "/users", "/audit", "/backups", "/password"]:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[:2000])
