"""The electronic slip (电子签购单) of a transaction as a PDF, with the signature picture.

The slip's content comes from :class:`posgate.receipt.Slip` (the receipt part's model, the same
words the terminal prints); the PDF from ``posgate.receipt.pdf.render_pdf`` when that renderer is
present, else from the small reportlab layout below (58 mm wide, the Chinese CID font, so no font
file is needed). A make-up signature carries the "补签 MAKE-UP SIGNATURE" mark; with the console's public address
known, the slip carries the QR code of the cardholder's e-receipt link.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from posgate.console.fmt import aware


def build_slip(txn: dict[str, Any], merchant: dict[str, Any], signature: dict[str, Any] | None, tz: str,
               receipt_url: str = "") -> Any:  # fmt: skip
    from posgate.receipt import Slip

    when = (aware(txn["created_at"]) or datetime.now(ZoneInfo(tz))).astimezone(ZoneInfo(tz))
    op = txn["operation"]
    kw: dict[str, Any] = {}
    if op in ("adjustment", "annulment"):
        kw = {"txn_type_zh": "补登调整" if op == "adjustment" else "补登撤销",
              "txn_type_en": "MAKE-UP ADJUSTMENT" if op == "adjustment" else "MAKE-UP ANNULMENT"}  # fmt: skip
    return Slip(
        merchant_name=merchant.get("name") or "", merchant_name_en=merchant.get("name_en") or "",
        merchant_id=txn["merchant_id"], terminal_id=txn["terminal_id"], operator=txn.get("operator") or "01",
        card_number=txn.get("pan_masked") or "", operation=op, batch_no=txn["batch_no"], stan=txn["stan"],
        when=when.replace(tzinfo=None), amount=abs(int(txn["amount"] or 0)), card_org=txn.get("card_organisation") or "",
        auth_code=txn.get("auth_code") or "", rrn=txn.get("rrn") or "", currency=txn.get("currency") or "156",
        # 03x: a QR payment, its wallet named and no signature line; 80x: a chip card read from its
        # stripe after a chip failure, printed 降级交易 / FALLBACK (C4); other card slips as before
        entry_mode=_slip_entry_mode(str(txn.get("entry_mode") or "")),
        signature_png=bytes(signature["png"]) if signature and signature.get("png") else None,
        make_up_signature=bool(signature and signature.get("source") == "makeup"), receipt_url=receipt_url, **kw,
    )  # fmt: skip


def _slip_entry_mode(stored: str) -> str:
    return {"03": "qr", "80": "fallback"}.get(stored[:2], "")


def render_pdf(txn: dict[str, Any], merchant: dict[str, Any], signature: dict[str, Any] | None, tz: str,
               lang: str = "zh", receipt_url: str = "") -> bytes:  # fmt: skip
    slip = build_slip(txn, merchant, signature, tz, receipt_url)
    try:
        from posgate.receipt import render_pdf as receipt_render_pdf
    except ImportError:  # pragma: no cover - the receipt part ships it
        return _fallback_pdf(slip, lang, signature)
    return bytes(receipt_render_pdf(slip, "en" if lang.startswith("en") else "zh"))


def render_text(txn: dict[str, Any], merchant: dict[str, Any], signature: dict[str, Any] | None, tz: str,
                lang: str = "zh") -> str:  # fmt: skip
    """The slip as the terminal prints it (32 columns), for the e-slip shown on the page."""
    from posgate.receipt import render_text as receipt_render_text

    return str(receipt_render_text(build_slip(txn, merchant, signature, tz), lang="en" if lang.startswith("en") else "zh"))


def _fallback_pdf(slip: Any, lang: str, signature: dict[str, Any] | None) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    from posgate.receipt import label

    font = "STSong-Light"
    try:
        pdfmetrics.getFont(font)
    except KeyError:
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    width = 58 * mm
    lines: list[tuple[str, str]] = [
        (label("merchant_name", lang), slip.merchant_name),
        (label("merchant_id", lang), slip.merchant_id),
        (label("terminal_id", lang), slip.terminal_id),
        (label("operator", lang), slip.operator),
        (label("card_number", lang), slip.card_line()),
        (label("issuer", lang), slip.issuer_text(lang, bilingual=False)),
        (label("txn_type", lang), slip.txn_type(lang)),
        (label("batch_no", lang), slip.batch_no),
        (label("voucher_no", lang), slip.stan),
        (label("auth_code", lang), slip.auth_code),
        (label("rrn", lang), slip.rrn),
        (label("datetime", lang), slip.when.strftime("%Y/%m/%d %H:%M:%S")),
        (label("amount", lang), slip.amount_text()),
    ]
    height = (40 + len(lines) * 9 + 70) * mm / 2.2
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width, height))
    c.setTitle(f"slip {slip.terminal_id} {slip.batch_no} {slip.stan}")
    y = height - 8 * mm
    c.setFont(font, 10)
    c.drawCentredString(width / 2, y, label("title", lang, bilingual=False))
    y -= 4.5 * mm
    c.setFont(font, 6)
    c.drawCentredString(width / 2, y, label("title", "en" if lang.startswith("zh") else "zh", bilingual=False))
    y -= 5 * mm
    for key, value in lines:
        c.setFont(font, 5.5)
        c.drawString(3 * mm, y, key)
        y -= 2.8 * mm
        c.setFont(font, 7.5 if key.startswith(("金额", "AMOUNT")) else 6.5)
        c.drawString(6 * mm, y, str(value))
        y -= 3.6 * mm
    y -= 1 * mm
    c.setFont(font, 5.5)
    c.drawString(3 * mm, y, label("signature", lang))
    y -= 2 * mm
    if slip.signature_png:
        img = ImageReader(io.BytesIO(slip.signature_png))
        iw, ih = img.getSize()
        box_w, box_h = width - 10 * mm, 18 * mm
        scale = min(box_w / iw, box_h / ih)
        c.drawImage(img, 5 * mm, y - ih * scale, iw * scale, ih * scale, mask="auto")
        y -= ih * scale + 3 * mm
        if slip.make_up_signature:
            c.setFillColorRGB(0.75, 0.1, 0.1)
            c.setFont(font, 7)
            c.drawString(3 * mm, y, f"{label('make_up', 'zh', bilingual=False)} {label('make_up', 'en', bilingual=False)}")
            c.setFillColorRGB(0, 0, 0)
            y -= 3.5 * mm
    else:
        c.setFont(font, 7)
        c.drawString(3 * mm, y - 5 * mm, label("unsigned", lang))
        y -= 10 * mm
    c.setFont(font, 4.5)
    c.drawString(3 * mm, max(y, 2 * mm), label("acknowledge", lang, bilingual=False)[:60])
    c.showPage()
    c.save()
    return buf.getvalue()
