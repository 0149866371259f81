"""posgate.receipt: the CUP sales slip and settlement slip, as 58 mm text and as PDF."""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import subprocess
import zlib
from datetime import datetime

import pytest
from PIL import Image

from posgate.dialect.fields import SideTotals
from posgate.receipt import (
    Copy,
    SettlementSlip,
    Slip,
    display_width,
    render_lines,
    render_pdf,
    render_settlement_pdf,
    render_settlement_text,
    render_text,
)
from posgate.signature import encode_for_field62, render_strokes

PAN = "6212142000000000012"
MASKED = "621214*********0012"
WHEN = datetime(2024, 5, 6, 7, 8, 9)


def _png() -> bytes:
    strokes = [[(40, 60), (90, 40), (140, 60), (120, 110), (80, 150)], [(200, 50), (200, 170), (260, 120), (330, 60)]]
    return encode_for_field62(render_strokes(strokes, pen=4)).to_png()


def make_slip(**kw: object) -> Slip:
    base: dict[str, object] = dict(
        merchant_name="演示便利店",
        merchant_name_en="Demo Mart",
        merchant_id="898100012340001",
        terminal_id="10000001",
        operator="01",
        card_number=PAN,
        operation="sale",
        batch_no="000001",
        stan="000123",
        when=WHEN,
        amount=1234,
        issuer="工商银行",
        acquirer="00049990",
        entry_mode="swipe",
        auth_code="123456",
        rrn="240506123456",
    )
    base.update(kw)
    return Slip(**base)  # type: ignore[arg-type]


VARIANTS = [
    make_slip(),
    make_slip(signature_png=b"png", copy=Copy.BANK, reprint=True),
    make_slip(operation="void", original_stan="000100", signature_png=b"png", make_up_signature=True),
    make_slip(operation="refund", original_rrn="240505000001", original_date="0505", remarks="退货原因：尺码不合适 wrong size"),
    make_slip(merchant_name="非常非常非常非常长的演示商户名称有限责任公司", merchant_name_en="A Very Long Demo Merchant Name Trading Company Limited"),
    make_slip(entry_mode="insert", card_org="CUP", ic_data=(("AID", "A000000333010101"), ("TC", "1DF54F39C90A0938"))),
    make_slip(amount=999_999_999_999, card_number="4761730000000011", card_org="VIS", entry_mode="manual"),
]


# --------------------------------------------------------------------------- model


def test_pan_is_masked_on_creation_whatever_was_passed():
    assert make_slip().card_number == MASKED
    assert make_slip(card_number="6212 1420 0000 0000 012").card_number == MASKED
    assert make_slip(card_number=MASKED).card_number == MASKED
    assert PAN not in repr(make_slip())


def test_voids_and_refunds_are_shown_negative():
    assert make_slip().amount_text() == "RMB 12.34"
    assert make_slip(operation="void").amount_text() == "RMB -12.34"
    assert make_slip(operation="refund").amount_text() == "RMB -12.34"
    assert make_slip(operation="completion", amount=5).amount_text() == "RMB 0.05"


def test_transaction_type_names_come_from_operations():
    assert make_slip().txn_type("zh") == "消费"
    assert make_slip().txn_type("en") == "SALE"
    assert make_slip(operation="void").txn_type("zh-CN") == "消费撤销"
    assert make_slip(operation="preauth", txn_type_en="PRE-AUTH").txn_type("en") == "PRE-AUTH"


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("slip", VARIANTS)
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("bilingual", [True, False])
def test_every_line_fits_58mm_and_no_clear_pan(slip, lang, bilingual):
    lines = render_lines(slip, 32, lang, bilingual=bilingual)
    assert all(display_width(line) <= 32 for line in lines), [line for line in lines if display_width(line) > 32]
    text = "\n".join(lines)
    assert PAN not in text and "4761730000000011" not in text
    assert slip.card_number in text


def test_display_width_counts_cjk_double():
    assert display_width("RMB 12.34") == 9
    assert display_width("消费") == 4
    assert display_width("本人确认，") == 10


def test_key_fields_present_zh():
    text = render_text(make_slip())
    for needle in [
        "POS签购单", "POS SALES SLIP", "商户存根", "商户名称(MERCHANT NAME)", "演示便利店", "Demo Mart",
        "商户编号(MERCHANT NO)", "898100012340001", "终端编号(TERMINAL NO):10000001", "操作员号(OPERATOR NO):01",
        "卡号(CARD NO)", MASKED + " /S", "发卡行(ISSUER):工商银行", "交易类型(TRANS TYPE)", "消费 SALE",
        "批次号(BATCH NO):000001", "凭证号(VOUCHER NO):000123", "授权码(AUTH NO):123456",
        "参考号(REFER NO):240506123456", "2024/05/06 07:08:09", "金额(AMOUNT)", "RMB 12.34",
        "持卡人签名 CARDHOLDER SIGNATURE", "本人确认以上交易，同意将其记入本", "I ACKNOWLEDGE SATISFACTORY",
    ]:
        assert needle in text, needle
    # The amount is right-aligned on its own line.
    assert "\n" + " " * (32 - 9) + "RMB 12.34\n" in text


def test_english_primary_and_monolingual():
    en = render_text(make_slip(), lang="en")
    assert "MERCHANT NAME(商户名称)" in en and "SALE 消费" in en
    assert en.index("Demo Mart") < en.index("演示便利店")
    only_zh = render_text(make_slip(), bilingual=False)
    assert "MERCHANT" not in only_zh and "I ACKNOWLEDGE" not in only_zh and "商户名称:" in only_zh
    only_en = render_text(make_slip(), lang="en", bilingual=False)
    assert "商户" not in only_en and "演示便利店" not in only_en and "Demo Mart" in only_en
    assert "MERCHANT NAME:" in only_en


def test_unsigned_signed_and_make_up_marks():
    unsigned = render_text(make_slip())
    assert "未签名 UNSIGNED" in unsigned and "_" * 32 in unsigned
    signed = render_text(make_slip(signature_png=_png()))
    assert "[已电子签名 E-SIGNED]" in signed and "未签名" not in signed and "补签" not in signed
    make_up = render_text(make_slip(signature_png=_png(), make_up_signature=True))
    assert "补签 MAKE-UP SIGNATURE" in make_up
    # A make-up flag without a signature is still unsigned.
    assert "未签名" in render_text(make_slip(make_up_signature=True))


def test_cardholder_copy_has_no_signature_area_and_copies_are_named():
    merchant, cardholder = make_slip().copies()
    assert "商户存根 MERCHANT COPY" in render_text(merchant)
    holder = render_text(cardholder)
    assert "持卡人存根 CARDHOLDER COPY" in holder
    assert "签名" not in holder and "ACKNOWLEDGE" not in holder
    assert "银行存根 BANK COPY" in render_text(make_slip(copy="bank"))
    no_sig = render_text(make_slip(signature_required=False))
    assert "未签名" not in no_sig


def test_reprint_void_refund_and_remarks():
    text = render_text(make_slip(operation="void", original_stan="000100", reprint=True))
    assert "*** 重打印 REPRINT ***" in text
    assert "消费撤销 SALE VOID" in text
    assert "原凭证号(ORIG VOUCHER):000100" in text
    assert "RMB -12.34" in text
    refund = render_text(make_slip(operation="refund", original_rrn="240505000001", original_date="0505", remarks="订单 A1"))
    assert "原参考号" in refund and "240505000001" in refund and "原交易日期" in refund
    assert "备注(REFERENCE):\n订单 A1" in refund


def test_ic_data_printed_under_remarks():
    text = render_text(VARIANTS[5])
    assert "AID:A000000333010101" in text and MASKED + " /I" in text


def test_wider_paper():
    lines = render_lines(make_slip(), 48)
    assert all(display_width(line) <= 48 for line in lines)
    assert "持卡人签名(CARDHOLDER SIGNATURE):" in lines


# --------------------------------------------------------------------------- settlement


def settlement(domestic_flag="1", foreign_flag="1", **kw):
    return SettlementSlip(
        merchant_name="演示便利店",
        merchant_name_en="Demo Mart",
        merchant_id="898100012340001",
        terminal_id="10000001",
        operator="01",
        batch_no="000001",
        when=datetime(2024, 5, 6, 23, 0, 0),
        domestic=SideTotals(123456, 3, 1200, 1, domestic_flag),
        foreign=SideTotals(5000, 1, 0, 0, foreign_flag),
        **kw,
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_settlement_slip_layout(lang):
    text = render_settlement_text(settlement(), lang=lang)
    lines = text.splitlines()
    assert all(display_width(line) <= 32 for line in lines)
    for needle in ["结算总计单", "SETTLEMENT SLIP", "898100012340001", "000001", "内卡", "外卡", "1234.56", "12.00", "RMB 1222.56", "50.00"]:
        assert needle in text, needle
    debit = next(line for line in lines if "DEBIT" in line)
    assert debit.endswith("1234.56") and " 3 " in debit


@pytest.mark.parametrize(
    ("flag", "zh", "en"),
    [("1", "对账平", "BALANCED"), ("0", "对账平", "BALANCED"), ("2", "对账不平", "NOT BALANCED"), ("3", "对账出错", "ERROR")],
)
def test_settlement_result_flags(flag, zh, en):
    text = render_settlement_text(settlement(domestic_flag=flag))
    domestic = text[text.index("内卡") : text.index("外卡")]
    assert zh in domestic and en in domestic
    assert settlement(domestic_flag=flag).balanced is (flag in "01")


def test_settlement_reprint():
    assert "重打印" in render_settlement_text(settlement(reprint=True))


# --------------------------------------------------------------------------- PDF


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def _streams(pdf: bytes) -> bytes:
    out = b""
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\n?endstream", pdf, re.S):
        data = m.group(1)
        if data.rstrip().endswith(b"~>"):  # reportlab: /Filter [ /ASCII85Decode /FlateDecode ]
            data = base64.a85decode(data.rstrip()[:-2])
        try:
            out += zlib.decompress(data)
        except zlib.error:
            out += data
    return out


def test_pdf_has_one_page_per_copy_and_is_deterministic():
    slip = make_slip(signature_png=_png())
    pdf = render_pdf(slip.copies())
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert _pages(pdf) == 2
    assert _pages(render_pdf(slip)) == 1
    assert _pages(render_pdf(slip.copies(Copy.MERCHANT, Copy.CARDHOLDER, Copy.BANK))) == 3
    assert render_pdf(slip.copies()) == pdf
    assert b"STSong-Light" in pdf
    assert b"/Subtype /Image" in pdf  # the signature is embedded
    assert b"/Subtype /Image" not in render_pdf(make_slip())  # unsigned: no picture
    assert _pages(render_settlement_pdf(settlement())) == 1
    with pytest.raises(ValueError):
        render_pdf([])


def test_pdf_page_is_58mm_wide():
    pdf = render_pdf(make_slip())
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert box is not None
    assert abs(float(box.group(1)) - 58 / 25.4 * 72) < 0.01
    assert float(box.group(2)) > 250  # a long strip


def test_pdf_never_holds_a_clear_pan():
    content = _streams(render_pdf(make_slip(signature_png=_png()).copies(), lang="en"))
    assert PAN.encode() not in content
    assert MASKED.encode() in content


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pdf_renders_with_the_signature_picture(tmp_path):
    path = tmp_path / "slip.pdf"
    path.write_bytes(render_pdf(make_slip(signature_png=_png())))
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(path), str(tmp_path / "p")], check=True, capture_output=True)
    page = Image.open(next(tmp_path.glob("p*.png"))).convert("L")
    assert abs(page.width - 58 / 25.4 * 100) < 3
    dark = sum(1 for v in page.tobytes() if v < 128)
    assert dark > 2000  # text and the signature strokes


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_text_reads_back(tmp_path):
    path = tmp_path / "slip.pdf"
    path.write_bytes(render_pdf(dataclasses.replace(make_slip(), merchant_name_en="")))
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    for needle in ("POS SALES SLIP", "MERCHANT NAME", MASKED, "RMB 12.34", "10000001", "000123"):
        assert needle in text, needle


def test_signed_without_the_picture_prints_the_mark_only():
    slip = make_slip(signature_png=b"")
    assert "[已电子签名 E-SIGNED]" in render_text(slip)
    pdf = render_pdf(slip)
    assert _pages(pdf) == 1 and b"/Subtype /Image" not in pdf


@pytest.mark.parametrize(("given", "suffix"), [("021", "/S"), ("051", "/I"), ("072", "/C"), ("012", "/M"), ("swipe", "/S"), ("", "")])
def test_entry_mode_from_a_word_or_the_field_22_code(given, suffix):
    slip = make_slip(entry_mode=given)
    assert slip.card_line() == (MASKED + " " + suffix).strip()
