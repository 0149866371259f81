"""The JSON API as outside checks use it (the shapes in the issue are kept exactly)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from .helpers import BISTRO, Env, api_token, txn_row


def signature_png(blank: bool = False) -> bytes:
    im = Image.new("RGB", (400, 150), "white")
    if not blank:
        d = ImageDraw.Draw(im)
        d.line([(20, 100), (80, 30), (140, 110), (220, 40), (300, 120), (380, 60)], fill="black", width=5)
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def test_token_and_transactions_shape(env: Env) -> None:
    c = env.client()
    h = api_token(c, "admin")
    items = c.get("/api/v1/transactions", params={"rrn": "000000000101", "terminal_id": "10000001"}, headers=h).json()
    assert len(items) == 1
    item = items[0]
    for key in ("id", "rrn", "terminal_id", "merchant_id", "pan_masked", "amount", "type", "response_code", "signed"):
        assert key in item
    assert item["amount"] == 1234 and item["type"] == "sale" and item["signed"] is False
    assert item["pan_masked"] == "621214*********0012"
    unsigned = c.get("/api/v1/transactions", params={"unsigned": "true"}, headers=h).json()
    ids = {i["id"] for i in unsigned}
    assert env.ids.mart_unsigned in ids and env.ids.bistro_unsigned in ids
    assert env.ids.mart_signed not in ids and env.ids.mart_declined not in ids
    assert all(i["signed"] is False for i in unsigned)


def test_api_requires_bearer(env: Env) -> None:
    c = env.client()
    assert c.get("/api/v1/transactions").status_code == 401
    assert c.get("/api/v1/transactions", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = c.post("/api/v1/auth/token", json={"username": "admin", "password": "wrong-password"})
    assert r.status_code == 401


def test_merchant_sees_only_its_transactions(env: Env) -> None:
    c = env.client()
    h = api_token(c, "bistro-admin")
    items = c.get("/api/v1/transactions", headers=h).json()
    assert items and {i["merchant_id"] for i in items} == {BISTRO}
    assert c.get(f"/api/v1/transactions/{env.ids.mart_unsigned}", headers=h).status_code == 404
    assert c.get(f"/api/v1/transactions/{env.ids.mart_unsigned}/receipt.pdf", headers=h).status_code == 404
    r = c.post(f"/api/v1/transactions/{env.ids.mart_unsigned}/signature", content=signature_png(),
               headers={**h, "Content-Type": "image/png"})  # fmt: skip
    assert r.status_code == 404
    assert not txn_row(env.db, env.ids.mart_unsigned)["signed"]


def test_makeup_signature_via_api_changes_receipt(env: Env) -> None:
    c = env.client()
    h = api_token(c, "mart-clerk")
    tid = env.ids.mart_unsigned
    before = c.get(f"/api/v1/transactions/{tid}/receipt.pdf", headers=h)
    assert before.status_code == 200 and before.content.startswith(b"%PDF")
    r = c.post(f"/api/v1/transactions/{tid}/signature", content=signature_png(), headers={**h, "Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    assert r.json()["signed"] is True
    after = c.get(f"/api/v1/transactions/{tid}/receipt.pdf", headers=h)
    assert after.status_code == 200 and after.content != before.content
    assert len(after.content) > len(before.content)  # the signature picture is in it
    item = c.get("/api/v1/transactions", params={"rrn": "000000000101"}, headers=h).json()[0]
    assert item["signed"] is True
    detail = c.get(f"/api/v1/transactions/{tid}", headers=h).json()
    assert detail["signature"]["source"] == "makeup" and detail["signature"]["captured_by"] == "mart-clerk"
    # a second make-up signature is refused; the first stays
    again = c.post(f"/api/v1/transactions/{tid}/signature", content=signature_png(), headers={**h, "Content-Type": "image/png"})
    assert again.status_code == 409
    audit = c.get("/api/v1/audit", params={"action": "transaction.makeup_signature"}, headers=api_token(c, "admin")).json()
    assert audit and audit[0]["object_id"] == str(tid) and audit[0]["actor"] == "mart-clerk"


def test_signature_rejects_blank_and_non_png(env: Env) -> None:
    c = env.client()
    h = api_token(c, "mart-clerk")
    url = f"/api/v1/transactions/{env.ids.mart_unsigned}/signature"
    assert c.post(url, content=signature_png(blank=True), headers={**h, "Content-Type": "image/png"}).status_code == 400
    assert c.post(url, content=b"<script>", headers={**h, "Content-Type": "image/png"}).status_code == 415
    assert c.post(url, content=signature_png(), headers={**h, "Content-Type": "image/jpeg"}).status_code == 415
    assert not txn_row(env.db, env.ids.mart_unsigned)["signed"]


def test_sign_on_register(env: Env) -> None:
    c = env.client()
    rows = c.get("/api/v1/sign-ons", headers=api_token(c, "support")).json()
    assert {r["terminal_id"] for r in rows} >= {"10000001", "10000002", "20000001"}
    refused = [r for r in rows if r["kind"] == "refused"]
    assert refused and refused[0]["response_code"] == "97" and refused[0]["device_serial"] == "NEWDEV99"
    mine = c.get("/api/v1/sign-ons", headers=api_token(c, "bistro-admin")).json()
    assert {r["merchant_id"] for r in mine} == {BISTRO}


def test_openapi_lists_the_api(env: Env) -> None:
    spec = env.client().get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/v1/auth/token", "/api/v1/transactions", "/api/v1/transactions/{txn_id}/signature",
              "/api/v1/transactions/{txn_id}/receipt.pdf", "/api/v1/sign-ons", "/api/v1/makeup-entries",
              "/api/v1/refund-requests", "/api/v1/terminals/{terminal_id}/resign", "/api/v1/statements"):
        assert p in paths, p
    assert not any(p.startswith("/transactions") for p in paths)  # pages are not API


def test_dashboard_figures(env: Env) -> None:
    c = env.client()
    d = c.get("/api/v1/dashboard", headers=api_token(c, "mart-admin")).json()
    assert d["sales_count"] == 3 and d["sales_amount"] == 12_34 + 56_78 + 200_00
    assert d["attempts"] == 4 and d["approved"] == 3
    assert d["unsigned"] == 3  # 2 today (mart) + 1 three days old
    assert d["open_differences"] == 1
    assert len(d["chart"]) == 14 and d["chart"][-1]["amount"] == 12_34 + 56_78 + 200_00
    assert d["chart"][-2]["amount"] == 1005
