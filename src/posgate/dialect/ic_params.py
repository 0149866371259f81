"""IC card parameters (AIDs) and CA public keys (CAPKs) as they travel in field 62 of the
download messages (docs/dialect.md 3.12): the query (0820, 60.3 ``372`` CAPK / ``382`` AID),
the download of one item (0800, ``370`` / ``380``) and the end (0800, ``371`` / ``381``).

Field 62 of a query request is ``1`` + the 2-digit index of the first item wanted (``100`` at
first; ``1`` + the count already received when the host said more follow). The reply is a
status digit and a list of items, each a flat TLV list:

* ``0`` the host has none; ``1`` every item is in this reply; ``2`` more follow (ask again from
  the next index); ``3`` the last items (the end of a list asked for in parts);
* a CAPK item is 9F06 (RID) 9F22 (index) DF05 (expiry); an AID item is 9F06 (AID).

A download request's 62 is the item's key (CAPK: 9F06 RID + 9F22 index; AID: 9F06 AID); the
reply's 62 is ``1`` + the whole parameter TLV list below. The tags are those real CUP hosts
and terminals use (tags DF01–DF21, DF02–DF07: private to the CUP terminal specification).

The TLV here is flat: CUP's private ``DFxx`` tags have the BER "constructed" bit set but carry
plain values, so field 62 is never read as nested TLV (unlike field 55).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from posgate.iso8583 import CodecError

# Query replies: the first byte of field 62.
NONE, ALL, MORE, LAST = b"0", b"1", b"2", b"3"
# Items per query reply: CAPK items are 23 bytes, AID items up to 19; ten keep field 62 small.
QUERY_PAGE = 10
QUERY_MAX_START = 99  # the start index is two digits

# 60.3 codes of the download messages.
CAPK_CODES = {"capk_query": "372", "capk_download": "370", "capk_end": "371"}
AID_CODES = {"aid_query": "382", "aid_download": "380", "aid_end": "381"}


# ---------------------------------------------------------------------------- flat TLV


def read_tlv(raw: bytes, path: str = "62") -> list[tuple[str, bytes]]:
    """(tag, value) items of a flat BER-TLV list; raises :class:`CodecError` naming the spot."""
    out: list[tuple[str, bytes]] = []
    p, end = 0, len(raw)
    while p < end:
        start = p
        first = raw[p]
        p += 1
        if first & 0x1F == 0x1F:
            while True:
                if p >= end:
                    raise CodecError(path, "a whole TLV tag", start)
                b = raw[p]
                p += 1
                if not b & 0x80:
                    break
        tag = raw[start:p].hex().upper()
        if p >= end:
            raise CodecError(f"{path}.{tag}", "a TLV length", p)
        n = raw[p]
        p += 1
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > 2 or p + k > end:
                raise CodecError(f"{path}.{tag}", "a TLV length", p)
            n = int.from_bytes(raw[p : p + k], "big")
            p += k
        if p + n > end:
            raise CodecError(f"{path}.{tag}", f"{n} bytes of value", p)
        out.append((tag, raw[p : p + n]))
        p += n
    return out


def write_tlv(items: Iterable[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for tag, value in items:
        n = len(value)
        length = bytes([n]) if n < 0x80 else (bytes([0x81, n]) if n < 0x100 else bytes([0x82]) + n.to_bytes(2, "big"))
        out += bytes.fromhex(tag) + length + value
    return bytes(out)


# ---------------------------------------------------------------------------- values


def _hex(value: str, what: str, *, size: int | None = None, lo: int = 0, hi: int = 255) -> str:
    v = value.strip().upper()
    if not v or len(v) % 2 or any(c not in "0123456789ABCDEF" for c in v):
        raise ValueError(f"{what} must be hex digits (an even number of them)")
    n = len(v) // 2
    if size is not None and n != size:
        raise ValueError(f"{what} must be {size} bytes ({size * 2} hex digits)")
    if not lo <= n <= hi:
        raise ValueError(f"{what} must be {lo} to {hi} bytes")
    return v


def _amount(value: int, what: str, digits: int = 12) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10**digits:
        raise ValueError(f"{what} must be an amount in fen, 0 to {10**digits - 1}")
    return value


def _n12(value: int) -> bytes:
    return bytes.fromhex(f"{value:012d}")


def _from_n12(raw: bytes, path: str) -> int:
    text = raw.hex()
    if len(raw) != 6 or not text.isdigit():
        raise CodecError(path, "6 bytes of BCD digits")
    return int(text)


# ---------------------------------------------------------------------------- AIDs


@dataclass(frozen=True, slots=True)
class AidParams:
    """The terminal parameters of one IC application (what a CUP host downloads with 380).

    Amounts are fen. ``cvm_limit`` (DF21) is the qPBOC no-CVM limit (免密免签): a contactless
    sale at or under it needs neither PIN nor signature."""

    aid: str  # 9F06, 5-16 bytes hex
    app_version: str = "0020"  # 9F08 application version number (the demo card's 9F09 is 0020)
    asi: int = 0  # DF01 application selection indicator: 0 partial match allowed, 1 exact
    tac_default: str = "D84000A800"  # DF11
    tac_online: str = "D84004F800"  # DF12
    tac_denial: str = "0010000000"  # DF13
    floor_limit: int = 0  # 9F1B, binary, fen
    threshold: int = 0  # DF15, binary, fen (biased random selection)
    max_target_percent: int = 99  # DF16, BCD
    target_percent: int = 99  # DF17, BCD
    ddol: str = "9F3704"  # DF14 default DDOL
    online_pin: bool = True  # DF18 online PIN capability
    ec_limit: int = 100000  # 9F7B electronic cash terminal transaction limit
    cl_floor_limit: int = 0  # DF19 contactless offline floor limit
    cl_transaction_limit: int = 999999999999  # DF20 contactless transaction limit
    cvm_limit: int = 100000  # DF21 contactless CVM limit: the no-CVM (免密免签) limit

    def checked(self) -> AidParams:
        """This record with its values normalised; ValueError says what is wrong."""
        return replace(
            self,
            aid=_hex(self.aid, "AID (9F06)", lo=5, hi=16),
            app_version=_hex(self.app_version, "application version (9F08)", size=2),
            asi=self.asi if self.asi in (0, 1) else _bad("ASI (DF01) must be 0 or 1"),
            tac_default=_hex(self.tac_default, "TAC default (DF11)", size=5),
            tac_online=_hex(self.tac_online, "TAC online (DF12)", size=5),
            tac_denial=_hex(self.tac_denial, "TAC denial (DF13)", size=5),
            floor_limit=_amount(self.floor_limit, "floor limit (9F1B)", 9),
            threshold=_amount(self.threshold, "threshold (DF15)", 9),
            max_target_percent=_percent(self.max_target_percent, "maximum target percent (DF16)"),
            target_percent=_percent(self.target_percent, "target percent (DF17)"),
            ddol=_hex(self.ddol, "default DDOL (DF14)", lo=1, hi=252),
            ec_limit=_amount(self.ec_limit, "EC transaction limit (9F7B)"),
            cl_floor_limit=_amount(self.cl_floor_limit, "contactless floor limit (DF19)"),
            cl_transaction_limit=_amount(self.cl_transaction_limit, "contactless transaction limit (DF20)"),
            cvm_limit=_amount(self.cvm_limit, "contactless CVM limit (DF21)"),
        )

    def tlv(self) -> bytes:
        return write_tlv([
            ("9F06", bytes.fromhex(self.aid)),
            ("DF01", bytes([self.asi])),
            ("9F08", bytes.fromhex(self.app_version)),
            ("DF11", bytes.fromhex(self.tac_default)),
            ("DF12", bytes.fromhex(self.tac_online)),
            ("DF13", bytes.fromhex(self.tac_denial)),
            ("9F1B", self.floor_limit.to_bytes(4, "big")),
            ("DF15", self.threshold.to_bytes(4, "big")),
            ("DF16", bytes.fromhex(f"{self.max_target_percent:02d}")),
            ("DF17", bytes.fromhex(f"{self.target_percent:02d}")),
            ("DF14", bytes.fromhex(self.ddol)),
            ("DF18", b"\x01" if self.online_pin else b"\x00"),
            ("9F7B", _n12(self.ec_limit)),
            ("DF19", _n12(self.cl_floor_limit)),
            ("DF20", _n12(self.cl_transaction_limit)),
            ("DF21", _n12(self.cvm_limit)),
        ])  # fmt: skip

    @classmethod
    def from_tlv(cls, raw: bytes, path: str = "62") -> AidParams:
        items = dict(read_tlv(raw, path))
        if "9F06" not in items:
            raise CodecError(f"{path}.9F06", "the AID")
        kw: dict[str, Any] = {"aid": items["9F06"].hex().upper()}
        for tag, name in (("9F08", "app_version"), ("DF11", "tac_default"), ("DF12", "tac_online"),
                          ("DF13", "tac_denial"), ("DF14", "ddol")):  # fmt: skip
            if tag in items:
                kw[name] = items[tag].hex().upper()
        if "DF01" in items:
            kw["asi"] = items["DF01"][0] if items["DF01"] else 0
        for tag, name in (("9F1B", "floor_limit"), ("DF15", "threshold")):
            if tag in items:
                kw[name] = int.from_bytes(items[tag], "big")
        for tag, name in (("DF16", "max_target_percent"), ("DF17", "target_percent")):
            if tag in items:
                text = items[tag].hex()
                kw[name] = int(text) if text.isdigit() else items[tag][0]
        if "DF18" in items:
            kw["online_pin"] = items["DF18"] != b"\x00"
        for tag, name in (("9F7B", "ec_limit"), ("DF19", "cl_floor_limit"), ("DF20", "cl_transaction_limit"),
                          ("DF21", "cvm_limit")):  # fmt: skip
            if tag in items:
                kw[name] = _from_n12(items[tag], f"{path}.{tag}")
        try:
            return cls(**kw).checked()
        except ValueError as e:
            raise CodecError(path, str(e)) from None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _bad(text: str) -> Any:
    raise ValueError(text)


def _percent(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 99:
        raise ValueError(f"{what} must be 0 to 99")
    return value


# ---------------------------------------------------------------------------- CAPKs


def capk_check_value(rid: str, index: str, modulus: str, exponent: str) -> str:
    """SHA-1 over RID ‖ index ‖ modulus ‖ exponent (EMV Book 2, 11.2.2): the CAPK check value."""
    # SHA-1 is what EMV fixes for this check value (DF06 = 01); it guards against typos, not attacks.
    digest = hashlib.sha1(bytes.fromhex(rid + index + modulus + exponent), usedforsecurity=False)
    return digest.hexdigest().upper()


@dataclass(frozen=True, slots=True)
class Capk:
    """A certification authority public key (what a CUP host downloads with 370)."""

    rid: str  # 9F06, 5 bytes
    index: str  # 9F22, 1 byte
    expiry: str  # DF05, YYYYMMDD (8 ASCII digits on the wire)
    modulus: str  # DF02
    exponent: str  # DF04: 03 or 010001
    check_value: str  # DF03: SHA-1 over RID ‖ index ‖ modulus ‖ exponent
    hash_algorithm: str = "01"  # DF06: 01 SHA-1
    algorithm: str = "01"  # DF07: 01 RSA

    @property
    def key(self) -> tuple[str, str]:
        return self.rid, self.index

    def checked(self) -> Capk:
        """This key normalised and verified: its check value must be the SHA-1 of its parts."""
        c = replace(
            self,
            rid=_hex(self.rid, "RID (9F06)", size=5),
            index=_hex(self.index, "CA public key index (9F22)", size=1),
            modulus=_hex(self.modulus, "modulus (DF02)", lo=64, hi=248),
            exponent=_hex(self.exponent, "exponent (DF04)", lo=1, hi=3),
            check_value=_hex(self.check_value, "check value (DF03)", size=20),
            hash_algorithm=_hex(self.hash_algorithm, "hash algorithm (DF06)", size=1),
            algorithm=_hex(self.algorithm, "public key algorithm (DF07)", size=1),
        )
        if c.exponent not in ("03", "010001"):
            raise ValueError("exponent (DF04) must be 03 or 010001")
        if c.hash_algorithm != "01":
            raise ValueError("hash algorithm (DF06) must be 01 (SHA-1)")
        e = self.expiry.strip()
        if len(e) != 8 or not e.isdigit() or not 1 <= int(e[4:6]) <= 12 or not 1 <= int(e[6:]) <= 31:
            raise ValueError("expiry (DF05) must be a date YYYYMMDD")
        computed = capk_check_value(c.rid, c.index, c.modulus, c.exponent)
        if computed != c.check_value:
            raise ValueError(
                f"check value {c.check_value} does not match the key: SHA-1 of RID, index, modulus and "
                f"exponent is {computed}"
            )
        return replace(c, expiry=e)

    def summary_tlv(self) -> bytes:
        return write_tlv([("9F06", bytes.fromhex(self.rid)), ("9F22", bytes.fromhex(self.index)),
                          ("DF05", self.expiry.encode("ascii"))])  # fmt: skip

    def tlv(self) -> bytes:
        return write_tlv([
            ("9F06", bytes.fromhex(self.rid)),
            ("9F22", bytes.fromhex(self.index)),
            ("DF05", self.expiry.encode("ascii")),
            ("DF06", bytes.fromhex(self.hash_algorithm)),
            ("DF07", bytes.fromhex(self.algorithm)),
            ("DF02", bytes.fromhex(self.modulus)),
            ("DF04", bytes.fromhex(self.exponent)),
            ("DF03", bytes.fromhex(self.check_value)),
        ])  # fmt: skip

    @classmethod
    def from_tlv(cls, raw: bytes, path: str = "62") -> Capk:
        items = dict(read_tlv(raw, path))
        for tag in ("9F06", "9F22", "DF05", "DF02", "DF04", "DF03"):
            if tag not in items:
                raise CodecError(f"{path}.{tag}", "a CA public key item")
        expiry = items["DF05"]
        # Real hosts send the expiry as 8 ASCII digits; some kernels' lists hold 4 BCD bytes.
        exp = expiry.decode("ascii", "replace") if len(expiry) == 8 else expiry.hex()
        try:
            return cls(
                rid=items["9F06"].hex(), index=items["9F22"].hex(), expiry=exp, modulus=items["DF02"].hex(),
                exponent=items["DF04"].hex(), check_value=items["DF03"].hex(),
                hash_algorithm=items.get("DF06", b"\x01").hex(), algorithm=items.get("DF07", b"\x01").hex(),
            ).checked()  # fmt: skip
        except ValueError as e:
            raise CodecError(path, str(e)) from None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------- messages


def query_request(start: int = 0) -> bytes:
    """Field 62 of a query: ``1`` + the 2-digit index of the first item wanted."""
    if not 0 <= start <= QUERY_MAX_START:
        raise ValueError("the start index is 0 to 99")
    return b"1" + f"{start:02d}".encode()


def parse_query_request(raw: bytes | None) -> int:
    """The start index of a query's field 62 (absent: 0)."""
    if not raw:
        return 0
    text = raw.decode("ascii", "replace")
    if len(text) != 3 or text[0] != "1" or not text[1:].isdigit():
        raise CodecError("62", "1 + a 2-digit start index")
    return int(text[1:])


def query_reply(items: Sequence[bytes], start: int, page: int = QUERY_PAGE) -> bytes:
    """Field 62 of a query reply: the status digit and the items from ``start`` (at most ``page``)."""
    if not items and start == 0:
        return NONE
    chunk = items[start : start + page]
    more = start + page < len(items)
    status = MORE if more else (ALL if start == 0 else LAST)
    return status + b"".join(chunk)


def parse_query_reply(raw: bytes | None) -> tuple[bytes, list[list[tuple[str, bytes]]]]:
    """(status, items): each item the TLVs from one 9F06 to the next."""
    if not raw:
        raise CodecError("62", "a status digit")
    status = raw[:1]
    if status not in (NONE, ALL, MORE, LAST):
        raise CodecError("62", "status 0, 1, 2 or 3")
    items: list[list[tuple[str, bytes]]] = []
    for tag, value in read_tlv(raw[1:]):
        if tag == "9F06":
            items.append([])
        if not items:
            raise CodecError("62", "an item that starts with 9F06")
        items[-1].append((tag, value))
    return status, items


def capk_key_tlv(rid: str, index: str) -> bytes:
    """Field 62 of a CAPK download request: 9F06 RID + 9F22 index."""
    return write_tlv([("9F06", bytes.fromhex(rid)), ("9F22", bytes.fromhex(index))])


def aid_key_tlv(aid: str) -> bytes:
    """Field 62 of an AID download request: 9F06 AID."""
    return write_tlv([("9F06", bytes.fromhex(aid))])


def download_reply(tlv: bytes) -> bytes:
    """Field 62 of a download reply: ``1`` + the item's parameter TLVs."""
    return ALL + tlv


def parse_download_reply(raw: bytes | None) -> bytes:
    if not raw or raw[:1] != ALL:
        raise CodecError("62", "1 + the parameter TLVs")
    return raw[1:]


# ---------------------------------------------------------------------------- demo


# UnionPay's published test CA public keys (RID A000000333, indexes 08 and 09): the keys of the
# UnionPay test cards, in every CUP terminal's test list. Check values recomputed in
# tests/dialect/test_ic_params.py.
UNIONPAY_TEST_CAPKS = (
    Capk(
        rid="A000000333", index="08", expiry="20301231", exponent="03",
        modulus=(
            "B61645EDFD5498FB246444037A0FA18C0F101EBD8EFA54573CE6E6A7FBF63ED21D66340852B0211CF5EEF6A1CD989F66"
            "AF21A8EB19DBD8DBC3706D135363A0D683D046304F5A836BC1BC632821AFE7A2F75DA3C50AC74C545A754562204137"
            "169663CFCC0B06E67E2109EBA41BC67FF20CC8AC80D7B6EE1A95465B3B2657533EA56D92D539E5064360EA4850FED2D1BF"
        ),
        check_value="EE23B616C95C02652AD18860E48787C079E8E85A",
    ),
    Capk(
        rid="A000000333", index="09", expiry="20301231", exponent="03",
        modulus=(
            "EB374DFC5A96B71D2863875EDA2EAFB96B1B439D3ECE0B1826A2672EEEFA7990286776F8BD989A15141A75C384DFC14F"
            "EF9243AAB32707659BE9E4797A247C2F0B6D99372F384AF62FE23BC54BCDC57A9ACD1D5585C303F201EF4E8B806AFB"
            "809DB1A3DB1CD112AC884F164A67B99C7D6E5A8A6DF1D3CAE6D7ED3D5BE725B2DE4ADE23FA679BF4EB15A93D8A6E29"
            "C7FFA1A70DE2E54F593D908A3BF9EBBD760BBFDC8DB8B54497E6C5BE0E4A4DAC29E5"
        ),
        check_value="A075306EAB0045BAF72CDD33B3B678779DE1F527",
    ),
)  # fmt: skip

# UnionPay's AIDs: debit (01), credit (02), quasi-credit (03); the no-CVM limit ¥1,000.00
# (raised from ¥300 on 2018-06-01).
DEMO_NO_CVM_LIMIT = 100000
UNIONPAY_AIDS = ("A000000333010101", "A000000333010102", "A000000333010103")
DEMO_AIDS = tuple(AidParams(aid=a, cvm_limit=DEMO_NO_CVM_LIMIT) for a in UNIONPAY_AIDS)
