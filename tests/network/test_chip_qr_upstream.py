"""Chip and scan-to-pay through the network: the network's issuer checks the ARQC and answers
the ARPC; a payment code that waits for the wallet password is answered 09 and confirmed by the
query, upstream."""

from __future__ import annotations

import pytest

from pair.test_chip_pair import CHIP, ChipDriver
from pair.test_terminal_core_pair import Driver
from posgate.terminal.cards import read_qr
from posgate.terminal.machine import Input

from .netkit import Acquirer

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

UP_WAIT = "6288000000000000029"


@pytest.fixture
def routed(tmp_path, network):
    acq = Acquirer(tmp_path, network.address, routes=(("6225880", "cupnet"), ("6288", "cupnet")))
    acq.wait_up()
    yield acq
    acq.close()


def test_chip_sale_is_verified_by_the_network_issuer(routed, network):
    t = ChipDriver(routed)  # type: ignore[arg-type]
    assert t.run(Input("sign_on", scheme="004")).approved
    before = network.balance(CHIP)
    r = t.run(Input("sale", amount=88_00, card=t.card(88_00, atc=0x0030)))
    assert r.approved, r.message  # the terminal checked the ARPC the network's issuer computed
    assert network.balance(CHIP) == before - 88_00
    replay = t.run(Input("sale", amount=1_00, card=t.card(1_00, atc=0x0030)))  # the same ATC again
    assert replay.response_code == "59" and network.balance(CHIP) == before - 88_00


def test_payment_code_waiting_for_the_password_is_confirmed_upstream(routed, network):
    t = Driver(routed)  # type: ignore[arg-type]
    assert t.run(Input("sign_on", scheme="004")).approved
    before = network.balance(UP_WAIT)
    r = t.run(Input("sale", amount=30_00, card=read_qr(UP_WAIT)))
    assert r.response_code == "09"
    assert network.balance(UP_WAIT) == before
    q = t.run(Input("qr_query"))
    assert q.approved and q.rrn == r.rrn, q.message
    assert network.balance(UP_WAIT) == before - 30_00
    kinds = [(x["processing_code"], x["response_code"], x["card_kind"]) for x in network.rows()]
    assert kinds == [("000000", "09", "qr"), ("000000", "00", "qr")]
    sale = next(x for x in routed.txns() if x["operation"] == "sale")
    assert sale["status"] == "approved" and sale["route"] == "cupnet"
