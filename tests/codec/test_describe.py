"""``describe`` and ``posgate decode``: every field shown with its name, card data and keys masked."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from posgate.cli import app
from posgate.dialect.cup import CODEC
from posgate.dialect.describe import describe, describe_rows, describe_short
from posgate.iso8583 import TLV, Message

from . import vectors as v

SALE = CODEC.decode(v.SALE_D)
REPLY_0810 = CODEC.decode(v.SIGN_ON_REPLY_0810)
KEY_BLOCK_PARTS = ["75CAD854C2E59A5E", "EDD7CA7410C2C215", "E6218EF29513B143", "20A69927F1772199", "44F8F3688FADD35E"]
SALE_SECRETS = [v.SALE_PAN, v.SALE_TRACK, v.SALE_TRACK_DISCRETIONARY, v.SALE_PIN_BLOCK, v.SALE_PIN_BLOCK.lower()]


def rows_by_path(msg: Message) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in describe_rows(msg):
        out.setdefault(r["path"], []).append(r["value"])
    return out


def test_sale_rows_mask_card_data() -> None:
    rows = rows_by_path(SALE)
    assert rows["mti"] == ["0200"]
    assert rows["2"] == ["621785*********0804"]
    assert rows["35"] == ["621785*********0804=*****************"]
    assert rows["52"] == ["[PIN block, 8 bytes]"]
    assert rows["14"] == ["****"]
    # What a payments engineer needs is still there.
    assert rows["4"] == ["000000000001"] and rows["11"] == ["000105"] and rows["22"] == ["071"]
    assert rows["60.1"] == ["22"] and rows["60.2"] == ["000001"] and rows["60.3"] == ["000"] and rows["60.4"] == ["6"]
    assert rows["55.9F26"] == ["9C0A057796D091E3"] and rows["55.9F02"] == ["000000000001"]
    assert rows["64"] == ["4433374345464536"]


def test_sale_text_holds_no_card_data() -> None:
    text = describe(SALE)
    for secret in SALE_SECRETS:
        assert secret not in text
    assert "621785*********0804" in text
    assert "Sale / 消费" in text
    line14 = next(line for line in text.splitlines() if line.strip().startswith("14 "))
    assert line14.rstrip().endswith("****") and "2308" not in line14


def test_the_0810_key_block_is_hidden() -> None:
    rows = rows_by_path(REPLY_0810)
    assert rows["62"] == ["[60 bytes hidden]", "60 bytes"]
    text = describe(REPLY_0810)
    for part in KEY_BLOCK_PARTS:
        assert part not in text and part.lower() not in text
    assert "working keys (encrypted, hidden)" in text
    assert "Sign-on / 签到" in text


def test_describe_short() -> None:
    assert describe_short(SALE) == "0200 sale stan=000105 tid=92336787 amount=000000000001 pan=621785*********0804"


def test_a_batch_upload_end_with_a_bad_count_is_described_not_crashed() -> None:
    end = Message("0320", {11: "000009", 41: "12345678", 42: "123456789012345", 48: "0012", 60: "00000001207"})
    assert ["12"] == rows_by_path(end)["48"][1:]
    bad = end.replace(f48="")
    rows = [r for r in describe_rows(bad) if r["path"] == "48"]
    assert rows[-1]["name"] == "sub-field error"


def test_an_e_signature_receipt_tlv_round_trips_and_describes() -> None:
    # 3.13: field 55 = receipt elements FF00 merchant name (GBK), FF01 transaction type (GBK),
    # FF02 operator, FF06 date-time (BCD), FF0A currency, FF70. FF.. tags carry plain values.
    receipt = TLV(
        [
            ("FF00", "测试商户".encode("gbk").hex()),
            ("FF01", "消费".encode("gbk").hex()),
            ("FF02", b"01".hex()),
            ("FF06", "20260121123456"),
            ("FF0A", b"156".hex()),
            ("FF70", "02"),
        ]
    )
    msg = Message("0820", {2: v.SALE_PAN, 4: "000000000001", 11: "000105", 41: "92336787", 42: "847100053990002",
                           55: receipt, 60: "07000001800", 62: b"\x00JBIG"})  # fmt: skip
    back = CODEC.decode(CODEC.encode(msg))
    assert back == msg
    f55 = back[55]
    assert isinstance(f55, TLV)
    assert f55["FF00"] == "测试商户".encode("gbk") and f55["FF06"] == bytes.fromhex("20260121123456")
    rows = rows_by_path(back)
    assert rows["55.FF02"] == ["3031"] and rows["62"][1] == "5 bytes"
    assert "E-signature upload" in describe(back)
    assert v.SALE_PAN not in describe(back)


# ---------------------------------------------------------------- posgate decode
runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["decode", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_cli_framed() -> None:
    code, out, err = run(v.SIGN_ON_A.hex().upper())
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "length  60"
    assert lines[1].startswith("TPDU    6000030000") and "destination 0003, source 0000" in lines[1]
    assert lines[2].startswith("header  602100000000") and "processing requirement 0" in lines[2]
    assert "Sign-on / 签到" in out and "000059" in out and "10400067" in out and "000000000000004" in out


def test_cli_tpdu_and_header_without_length() -> None:
    code, out, _ = run(v.SIGN_ON_B[2:].hex())
    assert code == 0
    assert "length" not in out.splitlines()[0]
    assert out.splitlines()[0].startswith("TPDU    6000009733") and "SpecRoute121206" in out


def test_cli_bare_body_as_pasted_with_spaces() -> None:
    text = v.SALE_D.hex().upper()
    pieces = [text[i : i + 90] for i in range(0, len(text), 90)]
    code, out, _ = run(*pieces)
    assert code == 0
    assert "TPDU" not in out and "length" not in out
    assert "621785*********0804" in out
    for secret in SALE_SECRETS:
        assert secret not in out


def test_cli_reads_stdin() -> None:
    text = v.SALE_D.hex()
    code, out, _ = run("-", stdin="\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n")
    assert code == 0
    assert "Sale / 消费" in out and "55.9F26" in out


def test_cli_json() -> None:
    code, out, _ = run(v.SIGN_ON_A.hex(), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["mti"] == "0800" and doc["length"] == 60 and doc["tpdu"] == "6000030000"
    assert doc["header"] == {"raw": "602100000000", "requirement": "0", "variant": "BCD"}
    assert doc["tpdu_variant"] == "BCD"
    assert {"path": "60.3", "name": "network management code", "value": "003"} in doc["fields"]
    code, out, _ = run(v.SALE_D.hex(), "--json")
    doc = json.loads(out)
    assert "tpdu" not in doc
    values = {r["path"]: r["value"] for r in doc["fields"]}
    assert values["2"] == "621785*********0804" and values["52"] == "[PIN block, 8 bytes]"
    for secret in SALE_SECRETS:
        assert secret not in out


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["zz"], None, "not hex"),
        (["08000"], None, "not hex"),
        (["-"], "   \n", "no hex given"),
        (["0800"], None, "as bare body: field mti at byte 0"),
        ([v.SALE_D[:-1].hex()], None, "field 64"),
        ([v.SIGN_ON_A[:-1].hex()], None, "as framed: the length prefix says 60 bytes but 59 follow"),
    ],
)
def test_cli_bad_input_exits_2_with_a_clear_message(args: list[str], stdin: str | None, message: str) -> None:
    code, out, err = run(*args, stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and message in err
    assert v.SALE_PAN not in err


def test_cli_reads_a_tpdu_with_a_hex_address_and_names_the_variant() -> None:
    # The host only swaps the TPDU addresses, so it accepts any: decode reads it too and says so.
    code, out, _ = run((v.SIGN_ON_A[:3] + b"\xaa" + v.SIGN_ON_A[4:]).hex())
    assert code == 0
    assert "TPDU    60AA030000" in out and "variant: hex destination" in out
