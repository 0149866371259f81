"""``posgate terminal`` as the SM4 (国密) demo terminal 40000001 against a host on a socket, and
the refusals of a configuration that cannot work (exit 2, nothing sent, nothing changed)."""

from __future__ import annotations

from pathlib import Path

from .hostd import HostThread
from .test_cli import OK, cli


def test_sm4_demo_terminal_signs_on_and_sells(tmp_path: Path) -> None:
    with HostThread() as host:
        rc, out = cli(tmp_path, host.port, "--tid", "40000001", "signon", "--json")
        assert rc == 0, out
        rc, out = cli(tmp_path, host.port, "--tid", "40000001", "sale", "12.34", "--card", OK, "--pin", "123456", "--json")
        assert rc == 0 and out["response_code"] == "00", out
        t = host.store.terminal("40000001")
        assert t is not None and t.key_scheme == "006" and t.algorithm == "sm4"
    rc, out = cli(tmp_path, 1, "--tid", "40000001", "journal", "--json")
    assert rc == 0 and out["status"]["algorithm"] == "sm4" and out["status"]["scheme"] == "006", out


def test_sm4_configuration_refusals_exit_2(tmp_path: Path) -> None:
    rc, _ = cli(tmp_path / "a", 1, "--tid", "40000002", "--algorithm", "rot13", "journal")
    assert rc == 2
    rc, _ = cli(tmp_path / "b", 1, "--tid", "40000002", "--algorithm", "sm4", "--tmk", "00" * 24, "journal")
    assert rc == 2
    rc, _ = cli(tmp_path / "c", 1, "--tid", "40000001", "signon", "--scheme", "004")
    assert rc == 2
    rc, _ = cli(tmp_path / "c", 1, "--tid", "40000001", "--scheme", "003", "journal")
    assert rc == 2
