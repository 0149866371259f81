"""发卡行 ISSUER on a slip: the issuing bank's name and 8-digit institution code where known,
else the card organisation's name — never the organisation code glued to the BIN
(``CUP621214``) that posgate's built-in issuer puts in field 44.1."""

from __future__ import annotations

from datetime import datetime

import pytest

from posgate.receipt import Slip, render_text


def _slip(**kw: object) -> Slip:
    base: dict[str, object] = dict(merchant_name="演示便利店", merchant_name_en="Demo Mart", merchant_id="898100012340001",
                                   terminal_id="10000001", operator="01", card_number="6212142000000000012",
                                   operation="sale", batch_no="000001", stan="000123", when=datetime(2026, 12, 3, 10, 0, 0),
                                   amount=1234, issuer="CUP621214", acquirer="00049990", entry_mode="swipe")  # fmt: skip
    base.update(kw)
    return Slip(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "zh", "en"), [
    ({}, "演示银行 DEMO BANK 00049990", "DEMO BANK 演示银行 00049990"),  # a demo card, as the host answers
    ({"issuer": "01020000"}, "工商银行 ICBC 01020000", "ICBC 工商银行 01020000"),  # a CUP host's institution code
    ({"issuer": "CUP623456", "card_number": "6234560000000000011"}, "银联 UnionPay", "UnionPay 银联"),  # BIN not in the table
    ({"issuer": "VIS476173", "card_number": "4761730000000011", "card_org": "VIS"}, "VISA", "VISA"),
    ({"issuer": "", "card_org": "CUP"}, "演示银行 DEMO BANK 00049990", "DEMO BANK 演示银行 00049990"),  # from the BIN
    ({"issuer": "工商银行"}, "工商银行", "工商银行"),  # a name given as is stays
])  # fmt: skip
def test_issuer_text(kw: dict[str, object], zh: str, en: str) -> None:
    slip = _slip(**kw)
    assert slip.issuer_text("zh") == zh and slip.issuer_text("en") == en


def test_one_language_slip_has_one_name() -> None:
    assert _slip().issuer_text("zh", bilingual=False) == "演示银行 00049990"
    assert _slip().issuer_text("en", bilingual=False) == "DEMO BANK 00049990"


def test_printed_slip_has_the_bank_and_code_not_the_raw_field() -> None:
    text = render_text(_slip())
    assert "CUP621214" not in text
    assert "演示银行" in text and "00049990" in text and "发卡行(ISSUER)" in text
    en = render_text(_slip(), lang="en")
    assert "DEMO BANK" in en and "CUP621214" not in en


def test_console_e_slip_names_the_issuer() -> None:
    from posgate.console.receipt import render_pdf
    from posgate.console.receipt import render_text as console_text

    txn = {"operation": "sale", "merchant_id": "898100012340001", "terminal_id": "10000001", "operator": "01",
           "pan_masked": "621214*********0012", "batch_no": "000001", "stan": "000123", "amount": 1234,
           "card_organisation": "CUP", "auth_code": "123456", "rrn": "000000000101", "currency": "156",
           "entry_mode": "021", "created_at": datetime(2026, 12, 3, 2, 0, 0)}  # fmt: skip
    merchant = {"name": "演示便利店", "name_en": "Demo Mart"}
    text = console_text(txn, merchant, None, "Asia/Shanghai")
    assert "发卡行(ISSUER)" in text and "演示银行" in text and "00049990" in text
    assert render_pdf(txn, merchant, None, "Asia/Shanghai").startswith(b"%PDF")
