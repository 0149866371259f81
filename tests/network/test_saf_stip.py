"""Store and forward, stand-in, upstream reversals: the acquirer (pipeline + routing issuer over a
real database) and a real network, with faults. Balances on both sides must agree."""

from __future__ import annotations

from pair.harness import PairTerminal
from posgate.store import admin

from .netkit import Acquirer, wait_for

OK = "6212142000000000012"


def sales(acq: Acquirer) -> list[dict]:
    return [x for x in acq.txns() if x["operation"] == "sale"]


def test_timeout_answers_98_and_reverses_upstream(acquirer, network):
    before = network.balance(OK)
    t = PairTerminal(acquirer)
    t.sign_on()
    network.do(lambda: network.network.set_fault("drop", "1"))  # the network debits, the reply is lost
    assert t.sale("ok", 5_000).code == "98"
    network.do(network.network.calm)
    wait_for(lambda: acquirer.saf().get("acked", 0) == 1, 15, "the upstream reversal to be acknowledged")
    assert network.balance(OK) == before  # debited up there, then reversed
    kinds = [(r["kind"], r["response_code"], r["reversed"]) for r in network.rows()]
    assert kinds == [("authorisation", "00", True), ("reversal", "00", False)]
    assert sales(acquirer)[-1]["response_code"] == "98"


def test_terminal_reversal_and_void_go_upstream(acquirer, network):
    before = network.balance(OK)
    t = PairTerminal(acquirer)
    t.sign_on()
    r = t.sale("ok", 7_000)
    assert r.code == "00"
    assert t.reversal_of(r.request).code == "00"
    s2 = t.sale("ok", 3_000)
    assert s2.code == "00"
    txn = t.journal[-1]
    assert t.void(txn).code == "00"
    wait_for(lambda: acquirer.saf().get("acked", 0) >= 1 and acquirer.saf().get("pending", 0) == 0
             and acquirer.saf().get("waiting", 0) == 0, 15, "the reversal to go up")  # fmt: skip
    assert network.balance(OK) == before  # sale reversed; sale voided (an online credit)


def test_stand_in_approves_within_limits_and_the_advice_goes_up_when_the_link_returns(acquirer, network):
    with acquirer.db.engine.begin() as conn:
        admin.set_stand_in_limit(conn, "debit", 20_000, daily_max=30_000)
    acquirer.upstream.reload()
    before = network.balance(OK)
    t = PairTerminal(acquirer)
    t.sign_on()
    network.do(lambda: network.network.set_fault("down", "on"))
    wait_for(lambda: not acquirer.upstream.links["cupnet"].up, 10, "the link to go down")
    assert t.sale("ok", 15_000).code == "00"  # stand-in
    assert t.sale("ok", 25_000).code == "92"  # over the per-transaction limit
    assert t.sale("ok", 16_000).code == "92"  # over the card's 24 h limit
    assert t.sale("poor", 100).code == "00"  # not routed: the built-in issuer answers as ever
    stood = [x for x in sales(acquirer) if x["stand_in"]]
    assert len(stood) == 1 and stood[0]["route"] == "cupnet" and stood[0]["upstream_stan"]
    wait_for(lambda: acquirer.saf().get("pending", 0) == 1, 10, "the advice to be queued once committed")
    network.do(lambda: network.network.set_fault("down", "off"))
    wait_for(lambda: acquirer.saf().get("acked", 0) == 1, 15, "the stand-in advice to go up")
    assert network.balance(OK) == before - 15_000
    advice = [r for r in network.rows() if r["kind"] == "advice"]
    assert len(advice) == 1 and advice[0]["stand_in"] and advice[0]["rrn"] == stood[0]["rrn"]


def test_offline_advice_is_stored_and_forwarded_across_an_acquirer_restart(tmp_path, network):
    acq = Acquirer(tmp_path, network.address)
    acq.wait_up()
    before = network.balance(OK)
    t = PairTerminal(acq)
    t.sign_on()
    network.do(lambda: network.network.set_fault("down", "on"))
    wait_for(lambda: not acq.upstream.links["cupnet"].up, 10, "the link to go down")
    assert t.offline("offline_settlement", 4_200).code == "00"  # answered at once: the money moved
    wait_for(lambda: acq.saf().get("pending", 0) == 1, 10, "the advice to be queued")
    acq.close()  # the acquirer goes away with the advice unsent
    network.do(lambda: network.network.set_fault("down", "off"))
    again = Acquirer(tmp_path, network.address)  # same database and journal, a new process
    try:
        wait_for(lambda: again.saf().get("acked", 0) == 1, 15, "the advice to be forwarded after the restart")
        assert network.balance(OK) == before - 4_200
        assert [r["kind"] for r in network.rows()] == ["advice"]
    finally:
        again.close()


def test_an_approval_the_acquirer_never_kept_is_reversed_after_a_restart(tmp_path, network):
    """The network approved, the acquirer died before its commit: the armed reversal goes up."""
    acq = Acquirer(tmp_path, network.address)
    acq.wait_up()
    before = network.balance(OK)
    t = PairTerminal(acq)
    t.sign_on()

    class Crash(Exception):
        pass

    real = acq.process

    def crash_before_commit(body, header=b"\x60\x31\x00\x00\x00\x00"):
        with acq.db.unit_of_work() as store:
            from posgate.host.pipeline import process

            process(header, body, store, acq.issuer(store), acq.env)
            raise Crash  # the unit of work rolls back: nothing of the sale is kept

    acq.process = crash_before_commit  # type: ignore[method-assign]
    try:
        t.sale("ok", 6_000)
    except Crash:
        pass
    acq.process = real  # type: ignore[method-assign]
    assert network.balance(OK) == before - 6_000  # approved up there
    acq.upstream.forwarder.stop()  # killed: the forwarder never resolved the armed entry
    acq.close()
    again = Acquirer(tmp_path, network.address)
    try:
        wait_for(lambda: again.saf().get("acked", 0) == 1, 15, "the reversal to be forwarded")
        assert network.balance(OK) == before
    finally:
        again.close()


def test_a_void_goes_where_its_sale_went_even_after_the_route_changed(acquirer, network):
    t = PairTerminal(acquirer)
    t.sign_on()
    with acquirer.db.unit_of_work() as store:
        builtin_before = store.card(store.pan_hash(OK)).balance  # type: ignore[union-attr]
    net_before = network.balance(OK)
    assert t.sale("ok", 2_000).code == "00"  # upstream
    sold_upstream = t.journal[-1]
    with acquirer.db.engine.begin() as conn:
        for r in admin.list_routes(conn):
            admin.remove_route(conn, r["id"])
    acquirer.upstream.reload()
    assert t.sale("ok", 3_000).code == "00"  # now the built-in issuer
    sold_here = t.journal[-1]
    with acquirer.db.engine.begin() as conn:
        admin.add_route(conn, "621214", None, "cupnet")
    acquirer.upstream.reload()
    assert t.void(sold_here).code == "00"  # back to the built-in issuer, where the money was taken
    assert t.void(sold_upstream).code == "00"
    with acquirer.db.unit_of_work() as store:
        assert store.card(store.pan_hash(OK)).balance == builtin_before  # type: ignore[union-attr]
    assert network.balance(OK) == net_before


def test_finished_journal_entries_are_pruned_open_ones_kept(acquirer):
    from posgate.iso8583 import Message

    j = acquirer.upstream.journal
    msg = Message("0420", {11: "000001", 37: "000000000001"})
    done = j.add("cupnet", "reversal", "waiting", msg, ("000000000001", "000001"))
    j.set_state(done, "acked", response_code="00")
    j.add("cupnet", "reversal", "armed", msg.replace(f11="000002"), ("000000000001", "000002"))
    import time

    assert j.prune(time.time() + 1) == 1
    assert j.counts() == {"armed": 1}
