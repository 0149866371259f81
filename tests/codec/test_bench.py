"""The codec benchmark runs, both sides do the same work, and its output ends with the ratio line."""

from __future__ import annotations

import json
import re

import pytest

from posgate.bench import codec as bench
from posgate.dialect.cup import CODEC
from posgate.iso8583 import TLV

from . import vectors as v


def test_the_request_is_the_real_sale_and_the_reply_has_the_usual_fields() -> None:
    assert bench.SALE_0200 == v.SALE_D
    reply = bench.sale_reply()
    assert sorted(reply) == [2, 3, 4, 11, 12, 13, 14, 15, 22, 25, 32, 37, 38, 39, 41, 42, 44, 49, 60, 63, 64]
    back = CODEC.decode(CODEC.encode(reply))
    assert back == reply and back.text(39) == "00" and back.text(11) == CODEC.decode(v.SALE_D).text(11)
    assert isinstance(CODEC.decode(bench.SALE_0200)[55], TLV)  # posgate parses field 55; pyiso8583 keeps hex
    bench.check_same_work(bench.SALE_0200, reply)  # raises SystemExit when the codecs disagree


def test_text_output_ends_with_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--seconds", "0.05", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"posgate\s+[\d.]+ µs/pair\s+[\d,]+ pairs/s", lines[-3])
    assert re.fullmatch(r"pyiso8583\s+[\d.]+ µs/pair\s+[\d,]+ pairs/s", lines[-2])
    assert re.fullmatch(r"posgate/pyiso8583 speed ratio: \d+\.\d\d", lines[-1])


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--seconds", "0.05", "--repeats", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["request_bytes"] == 271 and r["reply_bytes"] == len(CODEC.encode(bench.sale_reply()))
    assert r["posgate_us_per_pair"] > 0 and r["pyiso8583_us_per_pair"] > 0
    assert r["ratio"] == pytest.approx(r["pyiso8583_us_per_pair"] / r["posgate_us_per_pair"], abs=0.01)
