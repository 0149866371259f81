"""E-receipt links (issue 11): a cardholder opens the receipt without an account.

* an approved transaction gets a link on its console page; the link opens without login and
  shows the masked PAN, never the full one; the database holds only the token's hash (and the
  token sealed under the master key);
* an expired link and a revoked link say so (410); a new link can be made after a revocation;
* the page follows Accept-Language, and ``?lang=`` switches it;
* one client address opens a limited number of receipt pages a minute (429 with Retry-After);
* the QR codes (console page, PDF slip) decode to the link: read back with ZXing from pixels.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from posgate.console.fmt import utcnow
from posgate.console.receipt_links import RateLimiter
from posgate.receipt import Slip, render_text
from posgate.store import console_schema as cs
from posgate.store import schema as s

from .helpers import Env, csrf_of, login

FULL_PAN = "6212142000000000012"


def _link(env: Env, txn_id: int, user: str = "mart-clerk") -> tuple[str, str]:
    """(the link shown on the transaction page, its token)."""
    page = login(env.client(), user).get(f"/transactions/{txn_id}").text
    m = re.search(r'data-testid="receipt-url"[^>]*>([^<]+)<', page)
    assert m, "no e-receipt link on the transaction page"
    url = m.group(1)
    return url, url.rsplit("/r/", 1)[1]


def _path(url: str) -> str:
    return "/r/" + url.rsplit("/r/", 1)[1]


def test_link_opens_without_login_and_shows_only_the_masked_pan(env: Env) -> None:
    url, token = _link(env, env.ids.mart_unsigned)
    assert url.startswith("https://testserver/r/") and len(token) >= 22  # 16 random bytes, base64url
    anon = env.client()
    r = anon.get(_path(url), headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 200
    html = r.text
    assert "电子签购单" in html and "12.34" in html and "621214*********0012" in html
    assert "000000000101" in html and "123456" in html and "10000001" in html and "演示便利店" in html
    assert FULL_PAN not in html and "未签名" in html
    assert "发卡行" in html and "演示银行 00049990" in html  # the issuer as the slip names it
    assert r.headers["referrer-policy"] == "no-referrer" and "noindex" in r.headers["x-robots-tag"]
    assert "posgate_session" not in r.headers.get("set-cookie", "")
    en = anon.get(_path(url), headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert "E-receipt" in en and "Demo Mart" in en and "电子签购单" not in en
    assert "Issuer" in en and "DEMO BANK 00049990" in en
    assert "电子签购单" in anon.get(_path(url) + "?lang=zh_CN", headers={"Accept-Language": "en"}).text
    with env.db.engine.connect() as conn:
        row = conn.execute(select(cs.receipt_links).where(cs.receipt_links.c.transaction_id == env.ids.mart_unsigned)).mappings().one()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token.encode() not in bytes(row["token_sealed"]) and row["opened"] == 3
    # the same link again on the next visit (sealed token), not a new one
    assert _link(env, env.ids.mart_unsigned)[1] == token


def test_makeup_signature_shows_the_stamp(env: Env) -> None:
    from posgate.console.auth import Principal
    from posgate.console.txns import capture_signature

    from .test_api import signature_png

    clerk = Principal(0, "mart-clerk", "", "merchant_clerk", "898100012340001", "", 0, "web")
    with env.db.engine.begin() as conn:
        capture_signature(conn, clerk, env.ids.mart_unsigned, signature_png())
    url, _token = _link(env, env.ids.mart_unsigned)
    html = env.client().get(_path(url)).text
    assert 'data-testid="receipt-signature"' in html and "data:image/png;base64," in html
    assert 'data-testid="receipt-makeup"' in html and "补签" in html


def test_no_link_for_a_declined_transaction(env: Env) -> None:
    page = login(env.client(), "mart-clerk").get(f"/transactions/{env.ids.mart_declined}").text
    assert "receipt-link-card" not in page
    with env.db.engine.connect() as conn:
        assert conn.execute(select(cs.receipt_links)).first() is None


def test_expired_link(env: Env) -> None:
    url, _token = _link(env, env.ids.mart_signed)
    with env.db.engine.begin() as conn:
        conn.execute(update(cs.receipt_links).values(expires_at=utcnow() - timedelta(minutes=1)))
    r = env.client().get(_path(url))
    assert r.status_code == 410 and "已过期" in r.text and "12.34" not in r.text
    c = login(env.client(), "mart-clerk")
    page = c.get(f"/transactions/{env.ids.mart_signed}").text
    assert 'data-testid="new-link"' in page and "receipt-qr" not in page


def test_revoke_then_new_link(env: Env) -> None:
    tid = env.ids.mart_unsigned
    url, _token = _link(env, tid)
    other = login(env.client(), "bistro-admin")  # another merchant cannot touch it
    r = other.post(f"/transactions/{tid}/receipt-link/revoke", data={"csrf_token": csrf_of(other, "/password")}, follow_redirects=False)
    assert r.status_code == 404
    assert env.client().get(_path(url)).status_code == 200
    c = login(env.client(), "mart-admin")
    r = c.post(f"/transactions/{tid}/receipt-link/revoke", data={"csrf_token": csrf_of(c, f"/transactions/{tid}")}, follow_redirects=False)
    assert r.status_code == 303
    gone = env.client().get(_path(url), headers={"Accept-Language": "en"})
    assert gone.status_code == 410 and "This e-receipt was withdrawn" in gone.text and "12.34" not in gone.text
    page = c.get(f"/transactions/{tid}").text
    assert 'data-testid="new-link"' in page and "receipt-url" not in page  # no silent new link
    r = c.post(f"/transactions/{tid}/receipt-link/new", data={"csrf_token": csrf_of(c, f"/transactions/{tid}")}, follow_redirects=False)
    assert r.status_code == 303
    new_url, _ = _link(env, tid, "mart-admin")
    assert new_url != url
    assert env.client().get(_path(new_url)).status_code == 200 and env.client().get(_path(url)).status_code == 410
    with env.db.engine.connect() as conn:
        actions = [a for (a,) in conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.action.like("receipt_link.%")))]
    assert actions == ["receipt_link.revoked", "receipt_link.issued"]


def test_unknown_token_is_404(env: Env) -> None:
    r = env.client().get("/r/AAAAAAAAAAAAAAAAAAAAAA")
    assert r.status_code == 404 and "未找到电子签购单" in r.text


def test_rate_limit_per_client_address(env: Env) -> None:
    url, _token = _link(env, env.ids.mart_unsigned)
    env.app.state.console.receipt_limiter = RateLimiter(3, 60.0)
    anon = env.client()
    assert [anon.get(_path(url)).status_code for _ in range(3)] == [200, 200, 200]
    r = anon.get("/r/whatever-token-guess")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "请求过于频繁" in r.text and "12.34" not in r.text


def test_rate_limiter_window() -> None:
    rl = RateLimiter(2, 60.0)
    assert rl.allow("a", 0.0) and rl.allow("a", 1.0) and not rl.allow("a", 2.0)
    assert rl.allow("b", 2.0)  # per address
    assert rl.retry_after("a", 2.0) == 59
    assert rl.allow("a", 60.5)  # the first hit has left the window


def _decode(png: bytes) -> list[str]:
    import zxingcpp
    from PIL import Image

    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))]


def test_pdf_slip_carries_a_qr_code_of_the_link(env: Env, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("no pdftoppm (poppler-utils) to rasterise the PDF")
    tid = env.ids.mart_unsigned
    c = login(env.client(), "mart-clerk")
    without = c.get(f"/transactions/{tid}/receipt.pdf").content  # no public address: no QR code
    env.app.state.console.settings.public_url = "https://pay.example.cn"
    pdf = c.get(f"/transactions/{tid}/receipt.pdf").content
    _url, token = _link(env, tid)
    for name, data, expected in (("with", pdf, [f"https://pay.example.cn/r/{token}"]), ("without", without, [])):
        (tmp_path / f"{name}.pdf").write_bytes(data)
        subprocess.run(["pdftoppm", "-r", "300", "-png", "-singlefile", str(tmp_path / f"{name}.pdf"), str(tmp_path / name)],
                       check=True, timeout=60)  # fmt: skip
        assert _decode((tmp_path / f"{name}.png").read_bytes()) == expected
    page = c.get(f"/transactions/{tid}").text  # the console page then shows the public address too
    assert f"https://pay.example.cn/r/{token}" in page


def test_text_slip_prints_the_link() -> None:
    from datetime import datetime

    url = "https://pay.example.cn/r/AbCdEfGhIjKlMnOpQrStUv"
    slip = Slip(merchant_name="演示便利店", merchant_id="898100012340001", terminal_id="10000001", operator="01",
                card_number=FULL_PAN, operation="sale", batch_no="000001", stan="000101", when=datetime(2026, 12, 3, 10, 0),
                amount=1234, receipt_url=url)  # fmt: skip
    text = render_text(slip)
    assert "扫码查看电子签购单" in text and url in text.replace("\n", "")
    assert all(len(line) <= 32 for line in text.splitlines()) and FULL_PAN not in text
    assert url not in render_text(Slip(**{**{f: getattr(slip, f) for f in slip.__slots__}, "receipt_url": ""}))  # type: ignore[attr-defined]
