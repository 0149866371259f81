"""The host-to-host MAC (field 128) and key change, over real sockets: sign-on delivers the MAC
key under the zone master key, every message after it is MAC'd, a message altered on the wire
is not acted on (``A0``) and an altered reply is never taken for an approval (the acquirer
reverses), and key changes in the middle of traffic lose nothing."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
import time
from collections import Counter

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from typer.testing import CliRunner

from pair.harness import PairTerminal
from posgate.cli import app
from posgate.crypto import des_decrypt, kcv
from posgate.dialect import network as h2h
from posgate.host.metrics import registry
from posgate.iso8583 import Message
from posgate.network.keys import unwrap
from posgate.network.link import Link, transmission_time
from posgate.network.server import NetworkConfig

from .netkit import ZMK, Acquirer, FrameProxy, NetworkThread, tamper_once, wait_for

OK = "6212142000000000012"


def frame(sock: socket.socket, body: bytes) -> Message:
    sock.sendall(len(body).to_bytes(2, "big") + body)
    head = sock.recv(2, socket.MSG_WAITALL)
    return h2h.decode(sock.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL))


def sign_on(sock: socket.socket) -> tuple[Message, bytes]:
    reply = frame(sock, h2h.encode(Message("0800", {7: transmission_time(), 11: "000001", 32: "00049990", 70: "001"})))
    return reply, unwrap(ZMK, reply.text(48)[40:])


def balance_request(link: Link, rrn: str) -> Message:
    return Message("0100", {2: OK, 3: "310000", 4: "000000000000", 7: transmission_time(), 11: link.next_stan(),
                            25: "00", 32: "00049990", 37: rrn, 41: "10000001", 42: "898100012340001", 49: "156"})


def x9_19_oracle(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 alg. 3 written from the standard with ``cryptography`` alone: single-DES CBC
    under the left half, then decrypt under the right half and encrypt under the left."""
    data += bytes(-len(data) % 8)
    kl, kr = key[:8], key[8:]
    h = Cipher(TripleDES(kl * 3), modes.CBC(bytes(8))).encryptor().update(data)[-8:]
    h = Cipher(TripleDES(kr * 3), modes.ECB()).decryptor().update(h)
    return Cipher(TripleDES(kl * 3), modes.ECB()).encryptor().update(h)


def metric(kind: str) -> float:
    return registry.get_sample_value("posgate_upstream_mac_failures_total", {"link": "cupnet", "kind": kind}) or 0.0


def test_field_128_is_the_x9_19_mac_of_the_message_up_to_field_127():
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    msg = Message("0200", {2: OK, 3: "000000", 4: "000000010000", 11: "000001", 37: "334812000001"})
    raw = h2h.sign(msg, key)
    assert raw[2] & 0x80 and raw[17] & 0x01  # a secondary bitmap, and bit 128 in it
    assert raw[-8:] == x9_19_oracle(key, raw[:-8])
    got = h2h.decode(raw)
    assert got.data(128) == raw[-8:] and got.mac_block() == raw[:-8]
    assert h2h.mac_ok(got, key) and not h2h.mac_ok(got, bytes(16))
    altered = bytearray(raw)
    altered[raw.index(bytes.fromhex("000000010000")) + 5] = 0x01  # field 4: 100.00 → 100.01
    assert not h2h.mac_ok(h2h.decode(bytes(altered)), key)


def test_sign_on_delivers_a_mac_key_whose_check_value_matches(network):
    with socket.create_connection(network.address, timeout=5) as sock:
        reply, mak = sign_on(sock)
        f48 = reply.text(48)
        assert reply.text(39) == "00" and 128 not in reply and len(f48) == 80
        assert des_decrypt(ZMK, bytes.fromhex(f48[:32])) == network.network.zpk  # the zone PIN key first
        assert kcv(mak).hex().upper() == f48[72:]  # the MAC key's own check value, 4 bytes
        sessions = [s for s in network.network._sessions if s.keys is not None]
        assert [s.keys.kcv for s in sessions] == [f48[72:]]
        assert mak.hex().upper() not in repr(sessions[0].keys)
        # an echo MAC'd under it is answered, MAC'd under it too
        echo = frame(sock, h2h.sign(Message("0800", {7: transmission_time(), 11: "000002", 70: "301"}), mak))
        assert echo.text(39) == "00" and h2h.mac_ok(echo, mak)
    # the acquirer's link takes the same key: a wrong zone master key never signs on
    wrong = Link("cupnet", network.address, bytes(range(16)), pool=1, timeout=1, backoff_max=0.2).start()
    try:
        wait_for(lambda: wrong.stats["connect_failures"] >= 2, 10, "refused sign-ons")
        assert not wrong.up
    finally:
        wrong.stop()


def test_a_message_without_a_valid_mac_is_refused_a0_and_not_acted_on(network):
    before = network.balance(OK)
    sale = Message("0200", {2: OK, 3: "000000", 4: "000000001000", 7: transmission_time(), 11: "000003", 25: "00",
                            32: "00049990", 37: "000000000003", 41: "10000001", 42: "898100012340001", 49: "156"})
    with socket.create_connection(network.address, timeout=5) as sock:
        assert frame(sock, h2h.encode(sale)).text(39) == "A0"  # not signed on: no key, no MAC
        _, mak = sign_on(sock)
        assert frame(sock, h2h.encode(sale)).text(39) == "A0"  # no field 128
        assert frame(sock, h2h.sign(sale, bytes(16))).text(39) == "A0"  # another key's MAC
        reply = frame(sock, h2h.sign(sale, mak))
        assert reply.text(39) == "00" and h2h.mac_ok(reply, mak)
    assert network.balance(OK) == before - 1_000  # only the last one moved money
    assert [r["response_code"] for r in network.rows()] == ["00"]
    assert network.network.stats["mac_failures"] == 3


def test_a_routed_sale_is_approved_end_to_end_with_every_message_macd(tmp_path, network):
    proxy = FrameProxy(network.address)
    acq = Acquirer(tmp_path, proxy.address)
    try:
        acq.wait_up()
        before = network.balance(OK)
        t = PairTerminal(acq)
        assert t.sign_on().code == "00"
        assert t.sale("ok", 12_345).code == "00"
        assert network.balance(OK) == before - 12_345
        msgs = [(d, h2h.decode(b)) for d, b in proxy.frames]
        financial = [m for _, m in msgs if m.mti in ("0200", "0210")]
        assert [m.mti for m in financial] == ["0200", "0210"]
        assert all(128 in m for m in financial)
        assert all(128 not in m for _, m in msgs if m.text(70) == h2h.SIGN_ON)  # sign-on delivers the key
        assert network.network.stats["mac_failures"] == 0 and acq.upstream.links["cupnet"].stats["mac_failures"] == 0
    finally:
        acq.close()
        proxy.close()


def test_a_request_altered_on_the_way_is_refused_and_reversed_and_moves_no_money(tmp_path, network):
    proxy = FrameProxy(network.address)
    # field 4 of the sale, 50.00, becomes 10.00 between the acquirer and the network
    proxy.tamper_up, altered = tamper_once("0200", bytes.fromhex("000000005000"), bytes.fromhex("000000001000"))
    acq = Acquirer(tmp_path, proxy.address)
    try:
        acq.wait_up()
        before, refused = network.balance(OK), metric("refused")
        t = PairTerminal(acq)
        t.sign_on()
        assert t.sale("ok", 5_000).code == "98"  # an A0 is no answer: the terminal is told the issuer timed out
        assert altered, "the sale went through the proxy"
        replies = [h2h.decode(b) for d, b in proxy.frames if d == "down" and b[:2] == b"\x02\x10"]
        assert [r.text(39) for r in replies] == ["A0"]
        assert network.balance(OK) == before
        assert network.network.stats["mac_failures"] == 1
        assert acq.upstream.links["cupnet"].stats["mac_refused"] == 1 and metric("refused") == refused + 1
        wait_for(lambda: acq.saf().get("acked", 0) == 1, 15, "the reversal to be acknowledged")
        assert network.balance(OK) == before
        assert [(r["kind"], r["response_code"]) for r in network.rows()] == [("reversal", "00")]  # nothing to undo
    finally:
        acq.close()
        proxy.close()


def test_a_reply_altered_on_the_way_is_not_an_approval_the_acquirer_reverses(tmp_path, network):
    proxy = FrameProxy(network.address)
    # the 0210 approves 50.00; its auth code field is left alone, field 4 is altered on the way back
    proxy.tamper_down, altered = tamper_once("0210", bytes.fromhex("000000005000"), bytes.fromhex("000000005001"))
    acq = Acquirer(tmp_path, proxy.address)
    try:
        acq.wait_up()
        before, bad = network.balance(OK), metric("reply")
        t = PairTerminal(acq)
        t.sign_on()
        assert t.sale("ok", 5_000).code == "98"  # the approval did not verify: as if it never came
        assert altered and h2h.decode(altered[0]).text(39) == "00"  # it was an approval up there
        link = acq.upstream.links["cupnet"]
        assert link.stats["mac_failures"] == 1 and metric("reply") == bad + 1
        wait_for(lambda: acq.saf().get("acked", 0) == 1, 15, "the reversal to be acknowledged")
        assert network.balance(OK) == before  # debited up there, then reversed: nothing charged
        assert [(r["kind"], r["response_code"], r["reversed"]) for r in network.rows()] == [
            ("authorisation", "00", True), ("reversal", "00", False)]
        assert [x["response_code"] for x in acq.txns() if x["operation"] == "sale"] == ["98"]
    finally:
        acq.close()
        proxy.close()


def test_key_changes_from_both_sides_in_the_middle_of_traffic_lose_nothing(network):
    network.do(lambda: network.network.set_fault("slow", "0.15"))  # replies out of order, some across a change
    link = Link("cupnet", network.address, ZMK, pool=2, timeout=5).start()
    stop = threading.Event()
    changes: Counter[str] = Counter()

    def rekey() -> None:
        while not stop.is_set():
            changes["network"] += network.do(network.network.rekey)
            time.sleep(0.03)
            changes["acquirer"] += link.change_keys()
            time.sleep(0.03)

    try:
        wait_for(lambda: link.up, 10, "sign-on")
        thread = threading.Thread(target=rekey)
        thread.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                rrns = [f"{i:012d}" for i in range(1, 121)]
                replies = list(pool.map(lambda rrn: link.call(balance_request(link, rrn)), rrns))
        finally:
            stop.set()
            thread.join(10)
        assert [r.text(37) if r is not None else None for r in replies] == rrns
        assert all(r.text(39) == "00" for r in replies)
        assert changes["network"] >= 4 and changes["acquirer"] >= 4, changes
        stats = network.network.stats
        wait_for(lambda: stats["key_changes_confirmed"] == stats["key_changes_sent"], 5, "every pushed key confirmed")
        assert link.stats["mac_failures"] == 0 and stats["mac_failures"] == 0
        assert link.stats["timeouts"] == 0 and link.stats["key_change_failures"] == 0
        assert link.stats["key_changes_pushed"] == stats["key_changes_sent"]
    finally:
        link.stop()


def test_sales_across_key_changes_are_all_charged_once(tmp_path, network):
    acq = Acquirer(tmp_path, network.address)
    try:
        acq.wait_up()
        link = acq.upstream.links["cupnet"]
        before = network.balance(OK)
        t = PairTerminal(acq)
        t.sign_on()
        codes = []
        for i in range(6):
            network.do(network.network.rekey) if i % 2 else link.change_keys()
            codes.append(t.sale("ok", 100 + i).code)
        assert codes == ["00"] * 6
        assert network.balance(OK) == before - sum(100 + i for i in range(6))
        assert link.stats["key_changes"] == 3 * link.pool and link.stats["key_changes_pushed"] == 3 * link.pool
    finally:
        acq.close()


@pytest.mark.parametrize("side", ["network", "acquirer"])
def test_keys_change_periodically(tmp_path, side):
    net = NetworkThread(tmp_path, rekey_every=0.3 if side == "network" else 0)
    link = Link("cupnet", net.address, ZMK, pool=1, timeout=2, rekey_every=0.3 if side == "acquirer" else 0).start()
    try:
        wait_for(lambda: link.up, 10, "sign-on")
        counter = "key_changes_pushed" if side == "network" else "key_changes"
        wait_for(lambda: link.stats[counter] >= 2, 10, "two periodic key changes")
        assert link.call(balance_request(link, "000000000009")).text(39) == "00"
        assert link.stats["mac_failures"] == 0 and net.network.stats["mac_failures"] == 0
    finally:
        link.stop()
        net.close()


def test_rekey_command_pushes_a_new_key(tmp_path):
    net = NetworkThread(tmp_path, control_port=0)
    link = Link("cupnet", net.address, ZMK, pool=2, timeout=2).start()
    try:
        wait_for(lambda: link.up and sum(1 for c in link._conns if c.signed_on) == 2, 10, "sign-on")
        host, port = net.network.control_address
        r = CliRunner().invoke(app, ["network", "rekey", "--control", f"{host}:{port}"])
        assert r.exit_code == 0 and json.loads(r.output)["rekeyed"] == 2
        wait_for(lambda: link.stats["key_changes_pushed"] == 2, 5, "the pushed keys")
        assert link.call(balance_request(link, "000000000010")).text(39) == "00"
        assert NetworkConfig().rekey_every == 86_400  # daily unless told otherwise
    finally:
        link.stop()
        net.close()


def test_admin_upstream_rekey_makes_a_running_acquirer_ask_for_new_keys(tmp_path, network, monkeypatch):
    acq = Acquirer(tmp_path, network.address)
    try:
        acq.wait_up()
        link = acq.upstream.links["cupnet"]
        monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "acquirer.key"))
        r = CliRunner().invoke(app, ["admin", "upstream-rekey", "--db", f"sqlite:///{tmp_path / 'acquirer.db'}"])
        assert r.exit_code == 0, r.output
        wait_for(lambda: link.stats["key_changes"] == link.pool, 15, "the acquirer to ask (it reloads every 2 s)")
        assert network.network.stats["key_changes_asked"] == link.pool
        t = PairTerminal(acq)
        t.sign_on()
        assert t.sale("ok", 700).code == "00"
    finally:
        acq.close()


def test_posgate_decode_reads_a_host_to_host_message_with_its_mac():
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    raw = h2h.sign(Message("0200", {2: OK, 3: "000000", 4: "000000010000", 11: "000001", 37: "334812000001",
                                    100: "00010000"}), key)  # fmt: skip
    for text in (raw.hex(), (len(raw).to_bytes(2, "big") + raw).hex()):
        r = CliRunner().invoke(app, ["decode", text])
        assert r.exit_code == 0, r.output
        assert "host-to-host" in r.output and raw[-8:].hex().upper() in r.output
        assert "621214*********0012" in r.output and OK not in r.output
    r = CliRunner().invoke(app, ["decode", "--json", raw.hex()])
    rows = {x["path"]: x["value"] for x in json.loads(r.output)["fields"]}
    assert rows["128"] == raw[-8:].hex().upper() and rows["4"] == "000000010000"
