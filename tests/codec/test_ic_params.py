"""Field 62 of the IC public key / IC parameter downloads (docs/dialect.md 3.12): vectors from
real replies of a CUP host, and the UnionPay test CA public keys' check values."""

from __future__ import annotations

import hashlib

import pytest

from posgate.dialect import ic_params as icp
from posgate.iso8583 import CodecError

# A real 0830 reply to a CAPK query (60.3 372): five keys, status 1 (all in this reply).
CAPK_QUERY_REPLY = bytes.fromhex(
    "319f0605a0000000039f220109df050832303136313233319f0605a0000000049f220106df05083230313631323331"
    "9f0605a0000000659f220114df050832303136313233319f0605a0000003339f22010bdf05083230313631323331"
    "9f0605a0000003339f220108df05083230323031323331"
)
# A real 0810 reply to an AID download (60.3 380): the parameters of A0000000031010.
AID_DOWNLOAD_REPLY = bytes.fromhex(
    "319f0607a0000000031010df0101009f08020140df1105d84000a800df1205d84004f800df13050010000000"
    "9f1b0400000000df150400000000df160199df170199df14039f3704df1801019f7b06000000010000"
    "df1906000000000001df2006000000010000df2106000000010000"
)
# A real 0810 reply to a CAPK download (60.3 370): UnionPay's test key 08, expiry 2020-12-31.
CAPK_DOWNLOAD_REPLY = bytes.fromhex(
    "319f0605a0000003339f220108df05083230323031323331df060101df070101df028190"
    + icp.UNIONPAY_TEST_CAPKS[0].modulus.lower()
    + "df040103df0314ee23b616c95c02652ad18860e48787c079e8e85a"
)


def test_the_unionpay_test_keys_check_values_are_sha1_of_rid_index_modulus_exponent() -> None:
    for c in icp.UNIONPAY_TEST_CAPKS:
        digest = hashlib.sha1(bytes.fromhex(c.rid + c.index + c.modulus + c.exponent)).hexdigest().upper()
        assert digest == c.check_value
        assert c.checked() == c
    assert len(bytes.fromhex(icp.UNIONPAY_TEST_CAPKS[0].modulus)) == 144
    assert len(bytes.fromhex(icp.UNIONPAY_TEST_CAPKS[1].modulus)) == 176


def test_a_wrong_check_value_or_bad_key_is_refused() -> None:
    good = icp.UNIONPAY_TEST_CAPKS[0]
    bad = icp.Capk(**{**good.as_dict(), "check_value": "00" * 20})
    with pytest.raises(ValueError, match="does not match"):
        bad.checked()
    with pytest.raises(ValueError, match="exponent"):
        icp.Capk(**{**good.as_dict(), "exponent": "05"}).checked()
    with pytest.raises(ValueError, match="YYYYMMDD"):
        icp.Capk(**{**good.as_dict(), "expiry": "20301331"}).checked()


def test_real_capk_query_reply() -> None:
    status, items = icp.parse_query_reply(CAPK_QUERY_REPLY)
    assert status == icp.ALL and len(items) == 5
    assert [(dict(i)["9F06"].hex().upper(), dict(i)["9F22"].hex().upper()) for i in items][-1] == ("A000000333", "08")
    # Our own reply for the same five keys is the same bytes.
    keys = [icp.Capk(rid=dict(i)["9F06"].hex(), index=dict(i)["9F22"].hex(), expiry=dict(i)["DF05"].decode(),
                     modulus="00", exponent="03", check_value="00") for i in items]  # fmt: skip
    assert icp.query_reply([k.summary_tlv() for k in keys], 0) == CAPK_QUERY_REPLY


def test_real_aid_download_reply_round_trips() -> None:
    aid = icp.AidParams.from_tlv(icp.parse_download_reply(AID_DOWNLOAD_REPLY))
    assert aid.aid == "A0000000031010" and aid.app_version == "0140" and aid.ddol == "9F3704"
    assert aid.tac_default == "D84000A800" and aid.tac_online == "D84004F800" and aid.tac_denial == "0010000000"
    assert (aid.max_target_percent, aid.target_percent, aid.online_pin) == (99, 99, True)
    assert (aid.ec_limit, aid.cl_floor_limit, aid.cl_transaction_limit, aid.cvm_limit) == (10000, 1, 10000, 10000)
    assert icp.download_reply(aid.tlv()) == AID_DOWNLOAD_REPLY


def test_real_capk_download_reply_round_trips() -> None:
    capk = icp.Capk.from_tlv(icp.parse_download_reply(CAPK_DOWNLOAD_REPLY))
    assert capk.key == ("A000000333", "08") and capk.expiry == "20201231"
    assert icp.download_reply(capk.tlv()) == CAPK_DOWNLOAD_REPLY


def test_requests_and_bad_field_62() -> None:
    assert icp.query_request(0) == b"100" and icp.parse_query_request(b"112") == 12
    assert icp.capk_key_tlv("A000000333", "08") == bytes.fromhex("9F0605A0000003339F220108")
    assert icp.aid_key_tlv("A000000333010101") == bytes.fromhex("9F0608A000000333010101")
    for raw in (b"9", b"1\x9f\x06\x05\xa0"):
        with pytest.raises(CodecError):
            icp.parse_query_reply(raw)
    with pytest.raises(CodecError):
        icp.parse_download_reply(b"0")


# Whole replies of a CUP host (MTI onwards): a CAPK query answer (0830, 60.3 372) and an AID
# download answer (0810, 380); the field 62 vectors above are cut from these.
REAL_0830_372 = (
    "0830001800000ac0001414431009093135303930393833363435333030303030303131343031323334353637383930313233343500"
    "110000000137200116" + CAPK_QUERY_REPLY.hex()
)
REAL_0810_380 = (
    "0810001800000ac0001414431609093135303930393833363436323030303030303131343031323334353637383930313233343500"
    "110000000138000112" + AID_DOWNLOAD_REPLY.hex()
)


def test_real_download_replies_decode_and_are_recognised() -> None:
    from posgate.dialect.cup import CODEC
    from posgate.dialect.operations import identify

    query = CODEC.decode(bytes.fromhex(REAL_0830_372))
    assert query.mti == "0830" and query.text(39) == "00" and query.text(60) == "00000001372"
    assert identify(query).name == "capk_query" and query.data(62) == CAPK_QUERY_REPLY
    download = CODEC.decode(bytes.fromhex(REAL_0810_380))
    assert identify(download).name == "aid_download" and download.data(62) == AID_DOWNLOAD_REPLY
    assert CODEC.encode(download) == bytes.fromhex(REAL_0810_380)
