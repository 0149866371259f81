"""The upstream link against a real ``posgate network``: sign-on, out-of-order replies, echo
on idle, reconnect with back-off, late and duplicate replies."""

from __future__ import annotations

import concurrent.futures

from posgate.iso8583 import Message
from posgate.network.link import Link, LinkDown, transmission_time

from .netkit import ZMK, NetworkThread, wait_for

OK = "6212142000000000012"


def balance_request(link: Link, rrn: str) -> Message:
    return Message("0100", {2: OK, 3: "310000", 4: "000000000000", 7: transmission_time(), 11: link.next_stan(),
                            25: "00", 32: "00049990", 37: rrn, 41: "10000001", 42: "898100012340001", 49: "156"})


def test_sign_on_gives_the_zone_pin_key_and_out_of_order_replies_find_their_requests(network):
    network.do(lambda: network.network.set_fault("slow", "0.3"))  # each reply waits 0..0.3 s: out of order
    link = Link("cupnet", network.address, ZMK, pool=1, timeout=5).start()
    try:
        wait_for(lambda: link.up, 10, "sign-on")
        assert link.zpk == network.network.zpk
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            rrns = [f"{i:012d}" for i in range(1, 25)]
            replies = list(pool.map(lambda rrn: link.call(balance_request(link, rrn)), rrns))
        assert [r.text(37) for r in replies] == rrns  # every reply reached the request it answers
        assert all(r.text(39) == "00" and r.text(54) for r in replies)
        assert link.stats["timeouts"] == 0
    finally:
        link.stop()


def test_echo_on_idle(network):
    link = Link("cupnet", network.address, ZMK, pool=1, timeout=2, echo_every=0.2).start()
    try:
        wait_for(lambda: link.stats["echoes"] >= 2, 10, "two echoes")
        assert link.up
    finally:
        link.stop()


def test_reconnects_with_back_off_after_the_network_goes_down_and_comes_back(network):
    link = Link("cupnet", network.address, ZMK, pool=2, timeout=1, backoff_min=0.05, backoff_max=0.5).start()
    try:
        wait_for(lambda: link.up, 10, "sign-on")
        signed_on = link.stats["sign_ons"]
        network.do(lambda: network.network.set_fault("down", "on"))
        wait_for(lambda: not link.up, 10, "the link to notice")
        try:
            link.call(balance_request(link, "000000000001"))
            raise AssertionError("a call on a link that is down must raise")
        except LinkDown:
            pass
        failures = link.stats["connect_failures"]
        wait_for(lambda: link.stats["connect_failures"] >= failures + 3, 10, "retries")
        network.do(lambda: network.network.set_fault("down", "off"))
        wait_for(lambda: link.up, 10, "the link to sign on again")
        assert link.call(balance_request(link, "000000000002")).text(39) == "00"
        assert link.stats["sign_ons"] > signed_on
    finally:
        link.stop()


def test_a_late_reply_is_dropped_and_a_duplicate_reply_is_ignored(network):
    link = Link("cupnet", network.address, ZMK, pool=1, timeout=0.3).start()
    try:
        wait_for(lambda: link.up, 10, "sign-on")
        network.do(lambda: (network.network.set_fault("late", "1"), network.network.set_fault("late_by", "0.6")))
        assert link.call(balance_request(link, "000000000003"), timeout=0.3) is None
        wait_for(lambda: link.stats["unmatched"] >= 1, 5, "the late reply")
        network.do(lambda: (network.network.calm(), network.network.set_fault("duplicate", "1")))
        assert link.call(balance_request(link, "000000000004"), timeout=2).text(39) == "00"
        wait_for(lambda: link.stats["unmatched"] + link.stats["duplicates"] >= 2, 5, "the duplicate")
        assert link.up
    finally:
        link.stop()


def test_a_network_restart_is_survived(tmp_path):
    net = NetworkThread(tmp_path)
    link = Link("cupnet", net.address, ZMK, pool=1, timeout=1, backoff_max=0.3).start()
    try:
        wait_for(lambda: link.up, 10, "sign-on")
        old = link.zpk
        net.restart()
        wait_for(lambda: link.up and link.zpk != old, 10, "sign-on to the restarted network")
        assert link.call(balance_request(link, "000000000005")).text(39) == "00"
    finally:
        link.stop()
        net.close()


def test_status_counts_a_request_in_flight_and_names_its_state(tmp_path, network):
    """``Link.status``: signed on, one sale waiting for a slow network, then down with the reason."""
    import threading

    from pair.harness import PairTerminal

    from .netkit import Acquirer, wait_for

    acq = Acquirer(tmp_path, network.address, timeout=5.0, name="slowacq")
    try:
        acq.wait_up()
        link = acq.upstream.links["cupnet"]
        st = link.status()
        assert (st.state, st.signed_on, st.pool, st.in_flight) == ("signed_on", 2, 2, 0)
        assert st.last_message_at is not None and st.last_error is None
        t = PairTerminal(acq)
        t.sign_on()
        network.do(lambda: network.network.set_fault("slow", "1.5"))
        codes: list[str | None] = []
        sale = threading.Thread(target=lambda: codes.append(t.sale("ok", 1_000).code))
        sale.start()
        wait_for(lambda: link.status().in_flight == 1, 5, "the sale to be in flight")
        sale.join(10)
        assert codes == ["00"] and link.status().in_flight == 0
        network.do(network.network.calm)
        since = link.status().since
        network.do(lambda: network.network.set_fault("down", "on"))
        wait_for(lambda: link.status().state == "down", 20, "the link to be down")
        st = link.status()
        assert st.signed_on == 0 and st.since >= since and st.last_error_kind in ("timeout", "lost", "closed")
        network.do(lambda: network.network.set_fault("down", "off"))
        wait_for(lambda: link.status().state == "signed_on", 20, "the link to sign on again")
        assert link.status().since > st.since
    finally:
        acq.close()
    assert link.status().state == "down"  # a stopped link


def test_a_network_that_closes_instead_of_answering_the_sign_on_is_named_at_once():
    """A front end that accepts the connection and closes it: the link gives up on that sign-on
    when the connection closes, not after its whole timeout, and says the network closed it."""
    import socket
    import threading
    import time

    srv = socket.create_server(("127.0.0.1", 0))
    accepted: list[float] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            accepted.append(time.monotonic())
            conn.recv(4096)  # the sign-on arrives; no answer
            conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    link = Link("cupnet", srv.getsockname(), ZMK, pool=1, timeout=10.0, backoff_min=5.0, backoff_max=5.0)
    link.start()
    try:
        # Well inside the link's 10 s timeout, which it used to wait out.
        wait_for(lambda: link.status().last_error_kind is not None, 5, "the first attempt to fail")
        st = link.status()
        assert st.last_error_kind == "closed" and st.signed_on == 0 and accepted, st
    finally:
        link.stop()
        stop.set()
        th.join(5)
        srv.close()
