"""What goes on a slip, in order, as semantic rows — shared by the text and the PDF renderers.

A row says *what* a line is (a title, a ``label:value`` pair, the amount, a rule, the signature
area, a totals line), not how wide it is: the text renderer fits rows into 32 monospaced
columns, the PDF renderer into 58 mm with real font metrics. Keeping the order and the words in
one place means the printed slip, the on-screen slip and the PDF never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from posgate.dialect.fields import SideTotals
from posgate.domain.money import fen_to_yuan
from posgate.receipt.model import (
    COPY_NAMES,
    CURRENCY_SYMBOLS,
    ENTRY_MODES,
    LABELS,
    SettlementSlip,
    Slip,
    label,
    normalise_lang,
)


@dataclass(frozen=True, slots=True)
class Row:
    """kind: title | centre | rule | text | pair | amount | signature | columns | qr | blank.

    ``pair``: label ``a`` and value ``b`` (``b`` empty: a heading whose content follows);
    ``amount``: label ``a``, amount text ``b``, printed large and right-aligned;
    ``signature``: ``a`` is ``signed`` | ``make_up`` | ``unsigned`` and ``b`` the mark to print;
    ``columns``: name ``a``, count ``b``, amount ``c``;
    ``qr``: the link ``a`` (a QR code where the renderer can draw one, else the link as text).
    """

    kind: str
    a: str = ""
    b: str = ""
    c: str = ""
    alt: str = ""  # a shorter form of ``a`` for narrow paper (labels: "中 EN" instead of "中(EN)")


def both(key: str, lang: str, bilingual: bool = True) -> str:
    """A mark in both languages separated by a space (``未签名 UNSIGNED``), primary first."""
    zh, en = LABELS[key]
    if not bilingual:
        return en if lang == "en" else zh
    return f"{en} {zh}" if lang == "en" else f"{zh} {en}"


def _two(zh: str, en: str, lang: str, bilingual: bool) -> list[str]:
    names = [n for n in ((en, zh) if lang == "en" else (zh, en)) if n]
    return names if bilingual else names[:1]


def slip_rows(slip: Slip, lang: str = "zh", *, bilingual: bool = True) -> list[Row]:
    lang = normalise_lang(lang)

    def pair(key: str, value: str = "") -> Row:
        return Row("pair", label(key, lang, bilingual), value, alt=both(key, lang, bilingual))

    rows = [Row("title", both("title", lang, bilingual))]
    zh_copy, en_copy = COPY_NAMES[slip.copy]
    rows.append(Row("centre", " ".join(_two(zh_copy, en_copy, lang, bilingual))))
    if slip.reprint:
        rows.append(Row("centre", "*** " + both("reprint", lang, bilingual) + " ***"))
    rows.append(Row("rule"))
    rows.append(pair("merchant_name"))
    rows += [Row("text", n) for n in _two(slip.merchant_name, slip.merchant_name_en, lang, bilingual)]
    rows.append(pair("merchant_id", slip.merchant_id))
    rows.append(pair("terminal_id", slip.terminal_id))
    rows.append(pair("operator", slip.operator))
    rows.append(Row("rule"))
    issuer, acquirer = slip.issuer_text(lang, bilingual), slip.acquirer_text(lang, bilingual)
    if issuer:
        rows.append(pair("issuer", issuer))
    if acquirer:
        rows.append(pair("acquirer", acquirer))
    rows.append(pair("card_number"))
    rows.append(Row("text", slip.card_line()))
    if slip.entry_mode in ENTRY_MODES:
        zh, en = slip.entry_text()
        rows.append(pair("entry_mode", " ".join(_two(zh, en, lang, bilingual))))
    rows.append(pair("txn_type"))
    rows.append(Row("text", " ".join(_two(slip.txn_type("zh"), slip.txn_type("en"), lang, bilingual))))
    rows.append(pair("batch_no", slip.batch_no))
    rows.append(pair("voucher_no", slip.stan))
    if slip.auth_code:
        rows.append(pair("auth_code", slip.auth_code))
    if slip.rrn:
        rows.append(pair("rrn", slip.rrn))
    rows.append(pair("datetime", slip.when.strftime("%Y/%m/%d %H:%M:%S")))
    if slip.original_stan:
        rows.append(pair("original_voucher", slip.original_stan))
    if slip.original_rrn:
        rows.append(pair("original_rrn", slip.original_rrn))
    if slip.original_date:
        rows.append(pair("original_date", slip.original_date))
    rows.append(Row("amount", label("amount", lang, bilingual) + ":", slip.amount_text()))
    rows.append(Row("rule"))
    if slip.remarks or slip.ic_data:
        rows.append(pair("remarks"))
        if slip.remarks:
            rows.append(Row("text", slip.remarks))
        rows += [Row("text", f"{name}:{value}") for name, value in slip.ic_data]
    if slip.shows_signature:
        rows.append(pair("signature"))
        if slip.signed and slip.make_up_signature:
            rows.append(Row("signature", "make_up", "[" + both("signed", lang, bilingual) + "]\n" + both("make_up", lang, bilingual)))
        elif slip.signed:
            rows.append(Row("signature", "signed", "[" + both("signed", lang, bilingual) + "]"))
        else:
            rows.append(Row("signature", "unsigned", both("unsigned", lang, bilingual)))
        zh, en = LABELS["acknowledge"]
        rows += [Row("text", t) for t in _two(zh, en, lang, bilingual)]
        rows.append(Row("rule"))
    if slip.receipt_url:
        rows.append(Row("centre", both("e_receipt", lang, bilingual)))
        rows.append(Row("qr", slip.receipt_url))
    return rows


def _side_rows(key: str, side: SideTotals, currency: str, lang: str, bilingual: bool) -> list[Row]:
    sym = CURRENCY_SYMBOLS.get(currency, currency)
    return [
        Row("pair", both(key, lang, bilingual), both(SettlementSlip.result_key(side.flag), lang, bilingual)),
        Row("columns", both("debit", lang, bilingual), str(side.debit_count), fen_to_yuan(side.debit_amount)),
        Row("columns", both("credit", lang, bilingual), str(side.credit_count), fen_to_yuan(side.credit_amount)),
        Row("columns", both("net", lang, bilingual), "", f"{sym} {fen_to_yuan(side.debit_amount - side.credit_amount)}"),
    ]


def settlement_rows(slip: SettlementSlip, lang: str = "zh", *, bilingual: bool = True) -> list[Row]:
    lang = normalise_lang(lang)

    def pair(key: str, value: str = "") -> Row:
        return Row("pair", label(key, lang, bilingual), value, alt=both(key, lang, bilingual))

    rows = [Row("title", both("settlement_title", lang, bilingual))]
    if slip.reprint:
        rows.append(Row("centre", "*** " + both("reprint", lang, bilingual) + " ***"))
    rows.append(Row("rule"))
    rows.append(pair("merchant_name"))
    rows += [Row("text", n) for n in _two(slip.merchant_name, slip.merchant_name_en, lang, bilingual)]
    rows.append(pair("merchant_id", slip.merchant_id))
    rows.append(pair("terminal_id", slip.terminal_id))
    rows.append(pair("operator", slip.operator))
    rows.append(pair("batch_no", slip.batch_no))
    rows.append(pair("datetime", slip.when.strftime("%Y/%m/%d %H:%M:%S")))
    rows.append(Row("rule"))
    rows.append(Row("columns", both("type", lang, bilingual), "#", both("amount", lang, bilingual)))
    rows.append(Row("rule"))
    rows += _side_rows("domestic", slip.domestic, slip.currency, lang, bilingual)
    rows.append(Row("rule"))
    rows += _side_rows("foreign", slip.foreign, slip.currency, lang, bilingual)
    rows.append(Row("rule"))
    return rows
