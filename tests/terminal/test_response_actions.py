"""Every response code a cashier can get says what to do next, in zh-CN and English.

The walk: a suspended merchant's cashier saw only "invalid merchant [03]", an unapproved
device's "terminal not registered [97]". The codes on the wire stay the spec's; the terminal's
message table (posgate.domain.response_codes) now carries an action for every code — and for
any code outside it — and the core's results, the CLI (text and JSON) and the TUI show it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import posgate.host
from posgate.domain import response_codes
from posgate.domain.response_codes import CODES, describe
from posgate.terminal.machine import Input, TerminalConfig, new_state
from posgate.terminal.operations.base import Result, code_result

from .hostd import HostThread
from .test_cli import OK, cli

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("code", [*CODES, "Z9", "08", "  "])
def test_every_code_has_an_action_in_both_languages(code: str) -> None:
    rc = describe(code)
    assert CJK.search(rc.action_zh), code
    assert rc.action_en and rc.action_en.isascii() and not CJK.search(rc.action_en), code


def test_every_code_of_the_table_has_its_own_action() -> None:
    """No code of the table falls back to the generic text by omission."""
    assert set(response_codes._ACTIONS) == set(CODES)


def host_codes() -> set[str]:
    """Every response code written in the host's source: declines, the issuer's answers."""
    root = Path(posgate.host.__file__).parent
    text = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py"))
    found = set(re.findall(r'decline\([^,()]+,\s*"([0-9A-Z]{2})"', text))
    found |= set(re.findall(r'IssuerResult\(\s*"([0-9A-Z]{2})"', text))
    found |= set(re.findall(r'(?:return|else) "([0-9A-Z]{2})"', text))
    found |= set(re.findall(r'"(?:lost|stolen|restricted)": "([0-9A-Z]{2})"', text))
    return found


def test_every_code_the_host_sends_is_in_the_table() -> None:
    codes = host_codes()
    assert {"03", "14", "51", "55", "58", "75", "97", "A0"} <= codes  # the scan finds them
    assert codes <= set(CODES), codes - set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_a_result_carries_the_action_of_its_code(code: str) -> None:
    r = code_result("sale", code)
    d = r.as_dict()
    assert d["action_zh"] == CODES[code].action_zh and d["action_en"] == CODES[code].action_en
    assert d["action"] == f"{CODES[code].action_zh} / {CODES[code].action_en}"
    # Built without the table (a shell, an error path): still gets its action.
    assert Result("sale", response_code=code).action_en == CODES[code].action_en


def test_suspended_merchant_and_unapproved_device_against_the_host(tmp_path: Path) -> None:
    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon", "--json")[0] == 0
        host.store.update_merchant("898100012340001", status="suspended")
        rc, r = cli(state, host.port, "sale", "1.00", "--card", OK, "--pin", "123456", "--json")
        assert rc != 0 and isinstance(r, dict) and r["response_code"] == "03", r
        assert r["action_zh"] == "商户已暂停或未开通，请联系收单机构"
        assert r["action_en"] == "Merchant suspended or not set up: call your acquirer"
        # The un-MAC'd 03 left a reversal (R3), which the host's gate refuses too: the next
        # sale ends "reversal failed", with the 03 and what to do.
        rc, out = cli(state, host.port, "sale", "1.00", "--card", OK, "--pin", "123456")
        assert "冲正不成功" in out and "[03]" in out, out
        assert "请 ACTION: 商户已暂停或未开通，请联系收单机构 / Merchant suspended" in out, out
        rc, out = cli(tmp_path / "s2", host.port, "signon")
        assert (
            "[03]" in out and "请 ACTION: 商户已暂停或未开通，请联系收单机构 / Merchant suspended" in out
        ), out
        host.store.update_merchant("898100012340001", status="active")

        other = tmp_path / "other"  # a replacement device the acquirer has not approved (D7)
        rc, r = cli(other, host.port, "--serial", "NEWDEV01", "signon", "--json")
        assert rc != 0 and isinstance(r, dict) and r["response_code"] == "97", r
        assert r["action_en"] == "Device not registered: call your acquirer to register it"
        rc, out = cli(other, host.port, "--serial", "NEWDEV01", "signon")
        assert "设备未登记，请联系收单机构登记此设备" in out, out


def test_the_core_passes_the_action_of_a_gate_refusal() -> None:
    from pair.harness import make_world
    from pair.test_terminal_core_pair import Driver

    world = make_world()
    world.store.update_terminal("10000001", status="suspended")
    t = Driver(world)
    r = t.run(Input("sign_on", scheme="004"))
    assert r.response_code == "58" and r.action_en == "Terminal suspended: call your acquirer", r
    t.state = new_state(TerminalConfig(terminal_id="10000009"))
    r = t.run(Input("sign_on", scheme="004"))
    assert r.response_code == "97" and r.action_zh == "设备未登记，请联系收单机构登记此设备", r
