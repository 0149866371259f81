"""``posgate admin route``/``stand-in`` and ``posgate network fault``: output, refusals, exit codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from posgate.cli import app


def test_routes_and_stand_in_limits_from_the_shell(tmp_path):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str):
        return runner.invoke(app, [*args, "--db", url])

    assert "no routes" in run("admin", "route", "list").output
    r = run("admin", "route", "add", "621214", "cupnet", "--priority", "3")
    assert r.exit_code == 0 and "621214 -> cupnet" in r.output
    r = run("admin", "route", "add", "622000", "issuer", "--to", "622999", "--kind", "credit")
    assert r.exit_code == 0
    for bad in (["62a", "cupnet"], ["622999", "cupnet", "--to", "622000"], ["6220", "cupnet", "--to", "62209"],
                ["621214", "up net"], ["621214", "cupnet", "--kind", "gold"]):
        r = run("admin", "route", "add", *bad)
        assert r.exit_code == 1 and "error:" in r.output, bad
    rows = json.loads(run("admin", "route", "list", "--json").output)
    assert [(x["bin_low"], x["bin_high"], x["target"], x["priority"]) for x in rows] == [
        ("621214", "621214", "cupnet", 3), ("622000", "622999", "issuer", 0)]
    assert run("admin", "route", "remove", str(rows[0]["id"])).exit_code == 0
    assert run("admin", "route", "remove", str(rows[0]["id"])).exit_code == 1
    assert run("admin", "stand-in", "set", "debit", "50000", "--daily", "200000").exit_code == 0
    assert run("admin", "stand-in", "set", "debit", "50000", "--daily", "100").exit_code == 1
    assert run("admin", "stand-in", "set", "debit", "30000").exit_code == 0  # replaces the previous one
    limits = json.loads(run("admin", "stand-in", "list", "--json").output)
    assert [(x["card_kind"], x["max_amount"], x["daily_max"]) for x in limits] == [("debit", 30000, None)]


def test_fault_command_switches_a_running_network(network):
    network.call(network.network.close())
    from posgate.network.server import Network, NetworkConfig

    from .netkit import ZMK

    network.network = Network(network.db, ZMK, NetworkConfig(port=0, control_port=0))
    network.address = network.call(network.network.start())
    host, port = network.network.control_address
    runner = CliRunner()
    r = runner.invoke(app, ["network", "fault", "--control", f"{host}:{port}", "slow", "0.5"])
    assert r.exit_code == 0 and json.loads(r.output)["faults"]["slow"] == 0.5
    r = runner.invoke(app, ["network", "fault", "--control", f"{host}:{port}", "drop", "2"])
    assert r.exit_code == 1 and "probability" in r.output
    r = runner.invoke(app, ["network", "fault", "--control", f"{host}:{port}", "calm"])
    assert json.loads(r.output)["faults"]["slow"] == 0
