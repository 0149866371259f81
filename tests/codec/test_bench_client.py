"""The host benchmark's light load client (posgate.bench.loadclient) sends what the terminal core
sends, and checks replies the way the core does.

Two levels, no network:

* for a signed-on state (seeded keys; every key scheme, both MAC algorithms, clear or encrypted
  tracks, partial approval on), the light client's 0200 is byte for byte the core's
  (``machine.start(state, Input("sale", ...))``) for the same STAN, amount and card. No field
  is exempt: the core's sale carries no clock or random element (12/13 are the host's; a swipe
  has no field 55 with its unpredictable number), so only 11 and 64 change between two sales,
  and both are equal here for the same STAN;
* against the host's real pipeline in memory (``posgate.host.pipeline.process``, the demo
  store, the built-in issuer): the core signs on (the host generates the keys), light sales
  are approved by the host (which checks their MAC and PIN block), and each reply passes both
  the light client's check and the core's own section-10 check (``check_reply``, MAC under the
  MAK); a reply whose MAC or 39 is altered fails both.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from posgate.bench.loadclient import LightSale
from posgate.crypto import generate_working_keys
from posgate.dialect.cup import CODEC
from posgate.fleet.fleet import card_for, fleet_pan, fleet_specs
from posgate.framing import Header
from posgate.host.issuer import BuiltinIssuer
from posgate.host.memory import demo_memory_store
from posgate.host.pipeline import process
from posgate.host.ports import Env
from posgate.iso8583 import Message
from posgate.terminal import machine
from posgate.terminal.machine import Done, Input, Send
from posgate.terminal.operations.base import check_reply, local, reply_mac_ok
from posgate.terminal.state import TerminalState

NOW = datetime(2024, 5, 6, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
AMOUNT = 100


def signed_on(scheme: str = "004", stan: int = 41, **config: Any) -> TerminalState:
    """A fleet terminal as the core leaves it after a sign-on today, with seeded keys."""
    spec = fleet_specs(3)[2]
    state = machine.new_state(replace(spec.config(), scheme=scheme, **config))
    keys = generate_working_keys(scheme, random.Random(f"{scheme}{config}").randbytes)
    return replace(state, keys=keys, key_scheme=scheme, stan=stan, batch="000007",
                   signed_on_date=local(state, NOW).date().isoformat())  # fmt: skip


def core_sale(state: TerminalState, card: Any) -> Send:
    _, out = machine.start(state, Input("sale", amount=AMOUNT, card=card), NOW)
    assert isinstance(out, Send) and out.purpose == "sale", out
    return out


CONFIGS = {
    "004 encrypted tracks, CUP MAC": ("004", {}),
    "004 clear tracks": ("004", {"encrypt_tracks": False}),
    "003 double PIK, no TDK": ("003", {}),
    "001 single PIK": ("001", {}),
    "X9.19 MAC": ("004", {"mac_algorithm": "x919"}),
    "partial approval": ("004", {"partial_approval": True}),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("stan", [0, 41, 999_999])  # the first STAN, any, the wrap to 000001
def test_light_sale_is_the_cores_sale_field_by_field(name: str, stan: int) -> None:
    scheme, config = CONFIGS[name]
    state = signed_on(scheme, stan, **config)
    card = card_for(fleet_pan(3))
    core = core_sale(state, card)
    light = LightSale(state, card, AMOUNT)
    light_stan, body = light.request()

    assert light_stan == core.message.text(11) == f"{stan % 999_999 + 1:06d}"
    ours, theirs = CODEC.decode(body), CODEC.decode(core.body)
    assert ours.mti == theirs.mti == "0200"
    assert sorted(ours) == sorted(theirs), "field set"
    for number in theirs:
        assert ours[number] == theirs[number], f"field {number}"
    assert body == core.body  # and therefore the same MAC over the same MAB
    assert core.category == "60"  # the header bench.host frames light sales with
    # the core's own view of the request (its Message, before the MAC) is the same too
    assert {k: v for k, v in ours.items() if k != 64} == dict(core.message)


def test_light_sales_take_consecutive_stans_and_differ_only_in_11_and_64() -> None:
    state = signed_on()
    light = LightSale(state, card_for(fleet_pan(3)), AMOUNT)
    (s1, b1), (s2, b2) = light.request(), light.request()
    assert (s1, s2) == ("000042", "000043")
    m1, m2 = CODEC.decode(b1), CODEC.decode(b2)
    assert {n for n in m1 if m1[n] != m2[n]} == {11, 64}


def test_light_client_refuses_what_it_cannot_send() -> None:
    with pytest.raises(ValueError, match="signed on"):
        LightSale(machine.new_state(), card_for(fleet_pan(1)), AMOUNT)
    with pytest.raises(ValueError, match="magstripe"):
        LightSale(signed_on(), replace(card_for(fleet_pan(1)), pin=""), AMOUNT)


# -- against the host's pipeline, in memory ------------------------------------------------------

DEMO_OK = "6212142000000000012"  # docs/demo-data.md: CUP debit, PIN 123456, plenty of balance
DEMO_POOR = "6217000000000000020"  # docs/demo-data.md: balance too low for a sale of 100.00 → 51


class InMemoryHost:
    def __init__(self) -> None:
        self.env = Env(now=lambda: NOW, randbytes=random.Random(7).randbytes)
        self.store = demo_memory_store(self.env)
        self.issuer = BuiltinIssuer.with_random_zone_key(
            self.store, random.Random(8).randbytes, self.env.timezone
        )

    def exchange(self, body: bytes, category: str = "60") -> tuple[bytes, str]:
        reply = process(Header(category=category).encode(), body, self.store, self.issuer, self.env)
        assert reply.body is not None
        return reply.body, f"{reply.header[2] & 0x0F}"

    def sign_on(self) -> TerminalState:
        """The core's sign-on of demo terminal 10000001: working keys generated by the host."""
        state, out = machine.start(machine.new_state(), Input("sign_on", scheme="004"), NOW)
        while isinstance(out, Send):
            body, requirement = self.exchange(out.body, out.category)
            state, out = machine.on_reply(state, body, NOW, requirement=requirement)
        assert isinstance(out, Done) and out.result.approved, out
        assert state.keys is not None and state.keys.tdk is not None
        return state.drained()


def test_light_sales_against_the_host_pipeline_pass_the_cores_reply_check() -> None:
    host = InMemoryHost()
    state = host.sign_on()
    light = LightSale(state, card_for(DEMO_OK), 12_34)
    approved = []
    for _ in range(3):
        stan, body = light.request()
        approved.append((state.config.terminal_id, light.batch, stan))
        reply, requirement = host.exchange(body)
        assert requirement == "0"
        assert light.check(stan, reply) == ("00", "")
        decoded = CODEC.decode(reply)
        assert 64 in decoded and reply_mac_ok(state, decoded)
        request = CODEC.decode(body)
        assert check_reply(state, request, decoded, mac=True) == ""

        # A MAC that does not verify, or an approval turned into a decline on the way: the core
        # says "mac", and so does the light client (bench.host counts it as an error).
        bad_mac = reply[:-1] + bytes([reply[-1] ^ 0x01])
        assert light.check(stan, bad_mac) == ("00", "mac")
        assert check_reply(state, request, CODEC.decode(bad_mac), mac=True) == "mac"
        declined = CODEC.encode(Message("0210", {**decoded, 39: "05"}))[:-8] + reply[-8:]
        assert light.check(stan, declined) == ("05", "mac")
        assert check_reply(state, request, CODEC.decode(declined), mac=True) == "mac"
        # a reply to another sale
        assert light.check(f"{int(stan) + 1:06d}", reply)[1] == "field 11"

    # The host kept the three sales, approved, under the (TID, batch, STAN) bench.host records.
    assert light.stan == state.stan + 3
    for tid, batch, stan in approved:
        txn = host.store.find_message(tid, batch, stan, "0200")
        assert txn is not None and txn.response_code == "00"


def test_a_macd_decline_is_a_code_not_a_problem() -> None:
    host = InMemoryHost()
    state = host.sign_on()
    light = LightSale(state, card_for(DEMO_POOR), 100_000_00)
    stan, body = light.request()
    reply, _ = host.exchange(body)
    code, problem = light.check(stan, reply)
    assert code == "51" and problem == "", (code, problem)
    assert check_reply(state, CODEC.decode(body), CODEC.decode(reply), mac=True) == ""


def test_the_light_exchange_times_out_like_the_cores() -> None:
    """bench.host's light exchange (one timer instead of asyncio.wait_for) raises TimeoutError."""
    import asyncio

    from posgate.bench.host import _Conn

    class Silent:
        def write(self, data: bytes) -> None:
            pass

    async def main() -> None:
        conn = _Conn()
        conn.connection_made(Silent())  # type: ignore[arg-type]
        with pytest.raises(TimeoutError):
            await conn.exchange_light(b"frame", timeout=0.01)

    asyncio.run(main())
