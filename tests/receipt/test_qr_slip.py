"""Slips of scan-to-pay payments (docs/decisions.md Q4): "扫码支付" with the wallet's name, the
code masked like a PAN, and never a signature line (the customer confirmed on the phone)."""

from __future__ import annotations

import shutil
import subprocess
import zlib
from datetime import datetime

import pytest

from posgate.receipt import Slip, render_pdf, render_text

CODES = {
    "6288000000000000011": ("UnionPay QR", "628800*********0011"),
    "134567890123456789": ("WeChat Pay", "134567********6789"),
    "281234567890123456": ("Alipay", "281234********3456"),
}


def slip(code: str, entry: str = "032", **kw: object) -> Slip:
    return Slip(merchant_name="演示便利店", merchant_id="898100012340001", terminal_id="10000001", operator="01",
                card_number=code, operation="sale", batch_no="000001", stan="000002", when=datetime(2024, 5, 6, 10, 0),
                amount=1200, entry_mode=entry, auth_code="000001", rrn="000000000002", **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("code", list(CODES))
def test_text_slip_names_the_wallet_masks_the_code_and_has_no_signature_line(code: str) -> None:
    wallet, masked = CODES[code]
    text = render_text(slip(code))
    assert f"扫码支付 {wallet}" in text
    assert masked in text and code not in text
    assert "SIGNATURE" not in text and "签名" not in text


def test_a_qr_slip_never_asks_for_a_signature_whoever_builds_it() -> None:
    assert not slip("6288000000000000011", signature_required=True).signature_required
    assert slip("6212142000000000012", entry="021").signature_required  # a card still does


def _streams(pdf: bytes) -> bytes:
    out = [pdf]
    for part in pdf.split(b"stream")[1:]:
        body = part.split(b"endstream")[0].strip(b"\r\n")
        try:
            out.append(zlib.decompress(body))
        except zlib.error:
            pass
    return b"".join(out)


def test_pdf_slip_holds_no_clear_code() -> None:
    for code in CODES:
        pdf = render_pdf(slip(code).copies())
        assert pdf.startswith(b"%PDF") and code.encode() not in _streams(pdf)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_slip_reads_back_with_the_wallet_and_without_a_signature_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "slip.pdf"
    path.write_bytes(render_pdf(slip("6288000000000000011"), "en"))
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert "UnionPay QR" in text and "628800*********0011" in text
    assert "SIGNATURE" not in text
