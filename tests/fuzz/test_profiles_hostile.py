"""Hostile and mutated frames for terminals of every dialect profile, against ``posgate serve``
over a real socket (issue 10).

One terminal per profile (cup, x919, gz-bill, easy8583, pin1, pin3: the registry) is added to
the host's database and assigned its profile. Each signs on and makes a sale written the way
its profile writes it (codec, 60 tail, codes, MAC, PIN block format): approved, and the reply's
MAC verifies under the profile's algorithm. Then, for generated examples: a profile's valid sale
with bytes flipped, a field region overwritten, bitmap bits set, or the sale written in another
profile, is sent on its own connection. Accepted: a reply (any code) or a clean close; never
silence with the connection open, never a dead host; after each one the same terminal's echo
test is answered ``00`` on a new connection (the next client is served).

The figures (examples, frames sent, replies, closes, per profile) are printed at the end:
``CI=true pytest -s tests/fuzz/test_profiles_hostile.py``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posgate.crypto import encrypt_pin, encrypt_pin_block, mac_verify, unwrap_working_keys
from posgate.crypto.pinblock import pin_block_format1, pin_block_format3
from posgate.dialect import profiles
from posgate.dialect.fields import Field60, Field63, terminal_info
from posgate.fleet.hostproc import HostProcess
from posgate.iso8583 import Message

from .wire import DEMO_MID, exchange, frame

NAMES = list(profiles.PROFILES)
TMK = bytes.fromhex("31313131313131313232323232323232")  # the demo terminal 10000002's public test TMK
PAN, PIN = "6212142000000000012", "123456"  # demo magstripe card, approved (docs/demo-data.md)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])  # fmt: skip
STATS: Counter[str] = Counter()


@dataclass
class ProfileTerminal:
    """A terminal speaking ``profile``, built by hand (independent of the terminal core)."""

    profile: profiles.Profile
    tid: str
    port: int
    stan: int = 0
    mak: bytes = b""
    pik: bytes = b""
    batch: str = "000001"
    sent: Counter[str] = field(default_factory=Counter)

    def next_stan(self) -> str:
        self.stan += 1
        return f"{self.stan:06d}"

    def body(self, mti: str, fields: dict[int, Any], mac: bool, profile: profiles.Profile | None = None) -> bytes:
        p = profile or self.profile
        msg = p.outbound(Message(mti, dict(sorted(fields.items()))))
        return p.codec.encode(msg, mac=p.mac_function(self.mak) if mac else None)

    def send(self, body: bytes) -> Any:
        self.sent[self.profile.name] += 1
        STATS["frames"] += 1
        out = exchange(self.port, frame(body), timeout=10)
        assert not out.timed_out or out.closed, f"{self.profile.name}: the host went silent: {out!r}"
        STATS["replies" if out.frames else "closes"] += 1
        return out

    def sign_on(self) -> None:
        fields = {11: self.next_stan(), 41: self.tid, 42: DEMO_MID, 60: Field60("00", self.batch, "003").format(),
                  62: terminal_info(f"FZ{self.tid}"), 63: Field63("01").format()}  # fmt: skip
        out = self.send(self.body("0800", fields, mac=False))
        reply = self.profile.codec.decode(out.frames[0].body)
        assert reply.text(39) == "00", (self.profile.name, dict(reply))
        keys = unwrap_working_keys(TMK, "003", reply.data(62) or b"")
        self.mak, self.pik = keys.mak, keys.pik
        self.batch = Field60.parse(reply.text(60), self.profile.f60_private).batch_no

    def pin_block(self, profile: profiles.Profile | None = None) -> bytes:
        fmt = (profile or self.profile).pin_format
        if fmt == 1:
            return encrypt_pin_block(self.pik, pin_block_format1(PIN, bytes.fromhex("A1B2C3D4E5F607")))
        if fmt == 3:
            return encrypt_pin_block(self.pik, pin_block_format3(PIN, PAN, bytes.fromhex("ABCDEFABCDEFAB")))
        return encrypt_pin(self.pik, PIN, PAN)

    def sale(self, amount: int = 1_00, profile: profiles.Profile | None = None) -> bytes:
        fields = {3: "000000", 4: f"{amount:012d}", 11: self.next_stan(), 22: "021", 25: "00", 26: "12",
                  35: f"{PAN}=30122010000000000", 41: self.tid, 42: DEMO_MID, 49: "156", 52: self.pin_block(profile),
                  53: "2600000000000000", 60: Field60("22", self.batch, "000", "5", "0").format()}  # fmt: skip
        return self.body("0200", fields, mac=True, profile=profile)

    def echo(self) -> None:
        stan = self.next_stan()
        out = self.send(self.body("0820", {11: stan, 41: self.tid, 42: DEMO_MID,
                                           60: Field60("00", self.batch, "301").format()}, mac=False))  # fmt: skip
        reply = self.profile.codec.decode(out.frames[0].body) if out.frames else None
        assert reply is not None and reply.text(39) == "00" and reply.text(11) == stan, \
            f"{self.profile.name}: the next client was not served: {out!r}"  # fmt: skip


@pytest.fixture(scope="module")
def fleet(host: HostProcess) -> Iterator[dict[str, ProfileTerminal]]:
    from posgate.store.admin import add_terminal, set_profile
    from posgate.store.database import Database

    db = Database.open(host.db_url)
    tids = {name: f"7700{i:04d}" for i, name in enumerate(NAMES, start=1)}
    try:
        with db.engine.begin() as conn:
            for name, tid in tids.items():
                add_terminal(conn, db.keyring, tid, DEMO_MID, tmk=TMK, serial=f"FZ{tid}", actor="fuzz")
                set_profile(conn, tid, name, actor="fuzz")
    finally:
        db.close()
    terminals = {name: ProfileTerminal(profiles.get(name), tid, host.port) for name, tid in tids.items()}
    for t in terminals.values():
        t.sign_on()
    start = time.monotonic()
    yield terminals
    STATS["seconds"] = int(time.monotonic() - start)


def test_every_profile_signs_on_sells_and_its_reply_mac_verifies(fleet: dict[str, ProfileTerminal]) -> None:
    for name, t in fleet.items():
        out = t.send(t.sale(2_00))
        reply = t.profile.codec.decode(out.frames[0].body)
        assert reply.text(39) == "00", (name, reply.text(39))
        assert mac_verify(t.profile.mac_function(t.mak)(reply.mac_block()), reply.data(64) or b""), name


def test_a_sale_written_in_another_profile_is_approved_only_when_it_verifies_as_its_own(
    fleet: dict[str, ProfileTerminal],
) -> None:
    """The host checks a terminal's message with the terminal's profile: another profile's
    writing passes only when it is the same MAC over the same key and the same PIN block
    format (X9.19 under a single-length MAK is X9.9: gz-bill reads x919's sale), else never."""
    refused = 0
    for name, t in fleet.items():
        for other in NAMES:
            p = profiles.get(other)
            if other == name:
                continue
            body = t.sale(3_00, profile=p)
            out = t.send(body)
            code = t.profile.codec.decode(out.frames[0].body).text(39) if out.frames else None
            if code == "00":
                msg = t.profile.codec.decode(body)
                own_mac = t.profile.mac_function(t.mak)(msg.mac_block())
                assert mac_verify(own_mac, msg.data(64) or b"") and p.pin_format == t.profile.pin_format, (name, other)
            else:
                refused += 1
        t.sign_on()  # MAC failures in a row ask for a new sign-on: start the fuzz from a clean one
        t.echo()
    assert refused >= len(NAMES) * (len(NAMES) - 1) // 2


def _flip(body: bytes, at: int, xor: int) -> bytes:
    i = at % len(body)
    return body[:i] + bytes([body[i] ^ (xor or 1)]) + body[i + 1 :]


def _overwrite(body: bytes, at: int, junk: bytes) -> bytes:
    i = at % len(body)
    junk = junk[: len(body) - i]
    return body[:i] + junk + body[i + len(junk) :]


def _bitmap(body: bytes, bits: int) -> bytes:
    # Set bits in the primary bitmap (bytes 2..9): fields flagged that may not be there.
    bitmap = (int.from_bytes(body[2:10], "big") | bits).to_bytes(8, "big")
    return body[:2] + bitmap + body[10:]


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("overwrite"), st.integers(0, 10_000), st.binary(min_size=1, max_size=24)),
    st.tuples(st.just("bitmap"), st.integers(1, 2**64 - 1), st.just(0)),
)


@FUZZ
@given(name=st.sampled_from(NAMES), mutation=MUTATIONS)
def test_mutated_frames_of_every_profile_close_cleanly_and_the_next_client_is_served(
    fleet: dict[str, ProfileTerminal], host: HostProcess, name: str, mutation: tuple[str, int, Any]
) -> None:
    t = fleet[name]
    sale = t.sale()
    kind, a, b = mutation
    hostile = _flip(sale, a, b) if kind == "flip" else _overwrite(sale, a, b) if kind == "overwrite" else _bitmap(sale, a)
    STATS["examples"] += 1
    STATS[f"examples {name}"] += 1
    out = t.send(hostile)
    if out.frames:  # whatever it says, never an approval of bytes that changed
        reply = out.reply
        assert hostile == sale or reply is None or reply.text(39) != "00" or _same_content(t, hostile, sale)
    assert host.alive, host.log_tail(lines=20)
    t.echo()


def _same_content(t: ProfileTerminal, hostile: bytes, sale: bytes) -> bool:
    """A mutation that changed nothing the host reads (a flipped pad nibble) may be approved."""
    try:
        return t.profile.codec.decode(hostile) == t.profile.codec.decode(sale)
    except Exception:  # noqa: BLE001
        return False


def test_figures(fleet: dict[str, ProfileTerminal], host: HostProcess, capsys: pytest.CaptureFixture[str]) -> None:
    assert host.alive
    per = ", ".join(f"{n} {STATS[f'examples {n}']}" for n in NAMES)
    sent = Counter[str]()
    for t in fleet.values():
        sent.update(t.sent)
    with capsys.disabled():
        print(f"\nprofile fuzz: {STATS['examples']} mutated examples ({per}); {STATS['frames']} frames sent "
              f"({', '.join(f'{n} {sent[n]}' for n in NAMES)}); {STATS['replies']} answered, "
              f"{STATS['closes']} closed by the host")  # fmt: skip
    assert all(STATS[f"examples {n}"] > 0 for n in NAMES) or STATS["examples"] < 2 * len(NAMES)
