"""``posgate terminal`` with IC parameters (docs/dialect.md 3.12, docs/decisions.md C2), against a
real TCP host: the first sign-on fetches the keys and AIDs; a tap under the downloaded no-CVM
limit needs no PIN; the acquirer lowers the limit, the next reply asks for a download, and the
same tap then needs the PIN."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from posgate.dialect.ic_params import DEMO_AIDS

from .hostd import HostThread
from .test_cli import cli

CHIP = "6225880000000000010"
OK = "6212142000000000012"


def test_first_sign_on_download_and_a_lowered_limit_changes_the_tap(tmp_path: Path) -> None:
    state = tmp_path / "s"
    with HostThread() as host:
        rc, out = cli(state, host.port, "ic-params")
        assert rc == 0 and "no IC public keys or parameters loaded" in out
        assert cli(state, host.port, "signon")[0] == 0
        rc, j = cli(state, host.port, "ic-params", "--json")
        assert rc == 0 and [c["index"] for c in j["capks"]] == ["08", "09"]
        assert {a["aid"]: a["cvm_limit"] for a in j["aids"]}["A000000333010101"] == 100000
        rc, r = cli(state, host.port, "sale", "500.00", "--card", CHIP, "--entry", "tap", "--json")
        assert rc == 0 and r["approved"], r
        rc, out = cli(state, host.port, "reprint")
        assert "免密免签 No PIN, no signature" in out, out
        # The acquirer lowers the no-CVM limit to 300.00: the next reply asks (requirement 5).
        host.store.put_ic_params(aids=[replace(a, cvm_limit=30000) for a in DEMO_AIDS])
        assert cli(state, host.port, "sale", "1.00", "--card", OK, "--pin", "123456")[0] == 0
        assert not host.store.terminal("10000001").aid_pending
        rc, out = cli(state, host.port, "ic-params")
        assert "A000000333010101  免密限额 no-CVM limit 300.00" in out, out
        rc, r = cli(state, host.port, "sale", "500.00", "--card", CHIP, "--entry", "tap", "--json")
        assert rc == 2 and "above the no-PIN limit 300.00" in r["message"], r
        rc, r = cli(state, host.port, "sale", "500.00", "--card", CHIP, "--entry", "tap", "--pin", "123456", "--json")
        assert rc == 0 and r["approved"], r
        # On demand: both lists again.
        rc, r = cli(state, host.port, "download-ic-params", "--json")
        assert rc == 0 and r["approved"] and "2 CA public keys, 3 AIDs" in r["message_en"], r
