"""The issuer and acquirer lines of a slip in words a cardholder understands.

Field 44 of the host's reply carries the issuing institution (44.1) and the acquiring one
(44.2). A CUP host sends 8-digit institution codes there (工商银行 ``01020000``); posgate's
built-in issuer sends its card organisation and the card's BIN (``CUP621214``), a value test
kits outside the project see on the wire and which therefore stays as it is. Neither means
anything to a cardholder, so the slip prints, as a real CUP slip does, the bank's name and its
8-digit institution code (``发卡行(ISSUER): 演示银行 00049990``): the name from the small tables
below (the demo cards' BINs, docs/demo-data.md, and a few well-known CUP institution codes),
else the card organisation's name (``银联 UnionPay``, ``VISA``...). Display only: the stored and
sent values do not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Institution:
    zh: str
    en: str
    code: str = ""  # 8-digit CUP institution code, when known


# The demo's own bank: its acquirer (institution 00049990, docs/demo-data.md) also issues the
# built-in issuer's CUP cards (on-us), so they share the code.
DEMO_BANK = Institution("演示银行", "DEMO BANK", "00049990")

# BIN (first 6 digits of the card number) → issuing bank. The demo cards (posgate.store.demo).
BIN_ISSUERS: dict[str, Institution] = {
    "621214": DEMO_BANK,
    "621700": DEMO_BANK,
    "622588": DEMO_BANK,
}

# 8-digit CUP institution code → bank (the form a CUP host sends in field 44).
INSTITUTIONS: dict[str, Institution] = {
    "00049990": DEMO_BANK,
    "01020000": Institution("工商银行", "ICBC", "01020000"),
    "01030000": Institution("农业银行", "ABC", "01030000"),
    "01040000": Institution("中国银行", "BANK OF CHINA", "01040000"),
    "01050000": Institution("建设银行", "CCB", "01050000"),
    "03010000": Institution("交通银行", "BANK OF COMMUNICATIONS", "03010000"),
    "03080000": Institution("招商银行", "CHINA MERCHANTS BANK", "03080000"),
}

# card organisation (field 63.1) → its name
ORGANISATIONS: dict[str, Institution] = {
    "CUP": Institution("银联", "UnionPay"),
    "VIS": Institution("VISA", "VISA"),
    "MCC": Institution("万事达卡", "MasterCard"),
    "JCB": Institution("JCB", "JCB"),
    "AMX": Institution("美国运通", "American Express"),
    "AEX": Institution("美国运通", "American Express"),
    "DCC": Institution("大来卡", "Diners Club"),
}

_ORG_BIN = re.compile(r"^([A-Z]{3})(\d{6})$")
_CODE = re.compile(r"^\d{8}(\d{3})?$")


def _org(org: str) -> Institution | None:
    org = org.strip().upper()
    return ORGANISATIONS.get(org) or (Institution(org, org) if org else None)


def issuer(field44: str, card_number: str = "", organisation: str = "") -> Institution | None:
    """The issuer to print, from field 44.1 as received (``01020000``, ``CUP621214``, a name),
    else from the card's BIN and organisation; None when nothing is known."""
    value = field44.strip()
    if _CODE.match(value):
        code = value[:8]
        known = INSTITUTIONS.get(code)
        if known is not None:
            return known
        org = _org(organisation)
        return Institution(org.zh, org.en, code) if org else Institution("", "", code)
    m = _ORG_BIN.match(value)
    if m:
        organisation, bin6 = m.group(1), m.group(2)
    elif value:
        return Institution(value, value)  # a name already (a slip made by hand, another host)
    else:
        bin6 = card_number[:6] if card_number[:6].isdigit() else ""
    return BIN_ISSUERS.get(bin6) or _org(organisation)


def acquirer(field44: str) -> Institution | None:
    """The acquirer to print, from field 44.2 (the acquiring institution's code)."""
    value = field44.strip()
    if not value:
        return None
    if _CODE.match(value):
        return INSTITUTIONS.get(value[:8]) or Institution("", "", value[:8])
    return Institution(value, value)


def text(inst: Institution | None, lang: str, bilingual: bool) -> str:
    """``演示银行 DEMO BANK 00049990`` (bilingual, zh first), ``DEMO BANK 00049990`` (en only)."""
    if inst is None:
        return ""
    names = [inst.en, inst.zh] if lang == "en" else [inst.zh, inst.en]
    names = [n for i, n in enumerate(names) if n and n not in names[:i]]
    if not bilingual:
        names = names[:1]
    return " ".join([*names, inst.code]).strip()
