"""The light load client of ``bench.host``: a signed-on terminal's sales, built and checked directly.

Why it exists: the terminal package's sans-IO core (``posgate.terminal.machine``) plans every
sale as a flow of immutable records, keeps a reversal record and a transaction log, and
re-derives its state at each step. That is what a real terminal needs, and it costs about as
much CPU per sale as the host spends answering it, so a benchmark driving the host with the
core measures the client as much as the host. A load generator (wrk, jPOS's client
simulator) instead sends pre-shaped requests and checks the replies; this module is that, for
the one transaction the host benchmark repeats: a magstripe sale with a PIN.

What stays real: the sign-on is still done by the core (the host generates the working keys),
and :class:`LightSale` is built from the signed-on :class:`~posgate.terminal.state.TerminalState`
— its PIK, MAK, TDK, batch, STAN and configuration. Every request is encoded by the dialect's
codec (``posgate.dialect.cup.CODEC``) with a fresh STAN and a real MAC under the MAK (the
core's own :func:`~posgate.terminal.operations.base.mac_of`); every reply is decoded by the same
codec and its MAC verified with the core's :func:`~posgate.terminal.operations.base.reply_mac_ok`.
``tests/codec/test_bench_client.py`` holds the body byte for byte to what the core sends for
the same state, STAN, amount and card.

What is computed once: fields 22, 26, 35, 52, 53 depend on the card, the PIN and the keys of
the sign-on only. The PIN block is ISO 9564 format 0 (``0`` n PIN ``F…`` XOR the PAN field):
no per-transaction element (formats 1, 3 and 4 would carry random fill), so its encryption
under the PIK is the same for every sale. Track 2 is encrypted by TDES-ECB of one block under
the TDK (``posgate.crypto.track``), deterministic too. Only field 11 (the STAN) and field 64
(the MAC over MTI..63) change from one sale to the next.

What it does not do: reversals, make-up sign-ons, the re-sign-on retry (39 A0/99/77/22),
header processing requirements, the transaction log. A reply that would send the core down
one of those paths is reported as a problem, and ``bench.host`` counts it as an error: the
figure would otherwise be about a different workload from the core's.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from posgate.crypto import encrypt_pin, encrypt_track
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field60
from posgate.dialect.operations import OPERATIONS
from posgate.domain.response_codes import APPROVED, RESIGN
from posgate.iso8583 import CodecError, Message
from posgate.terminal.operations.base import Card, mac_of, reply_mac_ok
from posgate.terminal.state import STAN_MAX, TerminalState

__all__ = ["LightSale"]

SALE = OPERATIONS["sale"]


class LightSale:
    """Sales of one signed-on terminal with one swiped card and PIN, for a fixed amount.

    :meth:`request` takes the next STAN and returns the 0200 body (MAC'd) to send;
    :meth:`check` validates its reply the way the core's section-10 check does for a sale.
    The terminal's state is read once here and never written back: after a run of light
    sales its ``stan`` is behind (the caller keeps :attr:`stan` if it hands back to the core).
    """

    __slots__ = ("_mac", "_state", "_template", "batch", "stan", "terminal_id")

    def __init__(self, state: TerminalState, card: Card, amount: int) -> None:
        keys = state.keys
        if keys is None:
            raise ValueError("the terminal is not signed on: no working keys")
        if card.entry not in ("swipe", "fallback") or not card.track2 or not card.pin:
            raise ValueError("the light client sends magstripe sales with a PIN only")
        if amount <= 0:
            raise ValueError("the amount must be above 0")
        cfg = state.config
        self._state = state  # the keys and MAC algorithm of this sign-on, for mac_of
        self._mac = partial(mac_of, state)
        self.terminal_id = cfg.terminal_id
        self.batch = state.batch
        self.stan = state.stan  # the last STAN used, as in TerminalState
        # Track 2 encrypted under the TDK when the sign-on delivered one (scheme 004) and the
        # terminal is configured to (53.3 = 1); the spec's rule, as the core applies it.
        encrypted = keys.tdk is not None and cfg.encrypt_tracks and state.key_scheme == "004"
        track2 = encrypt_track(keys.tdk, card.track2) if encrypted and keys.tdk is not None else card.track2
        f606 = "1" if cfg.partial_approval else ""
        # Insertion order is the codec's plan key: a dict copied from this template keeps it,
        # so every sale after the first one is encoded by the same generated encoder.
        self._template: dict[int, Any] = {
            11: "",  # the STAN, set per sale
            41: cfg.terminal_id,
            42: cfg.merchant_id,
            3: SALE.processing_code,
            4: f"{amount:012d}",
            25: SALE.condition_code,
            49: cfg.currency,
            22: "021",  # swiped (02), PIN captured (1)
            35: track2,
            26: "12",  # the PIN pad takes up to 12 digits
            # ISO 9564 format 0 under the PIK: the same block every sale (no random fill).
            52: encrypt_pin(keys.pik, card.pin, card.pan),
            # 53.1 = 2 (format 0 with PAN), 53.2 = 6 for a double-length PIK, 53.3 = track encryption
            53: "2" + ("6" if len(keys.pik) >= 16 else "0") + ("1" if encrypted else "0") + "0" * 13,
            # 60.4 = 5 (magstripe and chip reader), 60.5 = 2 for a chip card read from its stripe
            # (docs/decisions.md C4), else 0; 60.6 partial approval
            60: Field60(SALE.type_code, state.batch, SALE.nmic, "5", "2" if card.entry == "fallback" else "0", f606).format(),
        }

    def next_stan(self) -> str:
        """The next STAN (000001..999999, wrapping to 000001, as the core's ``next_stan``)."""
        n = self.stan + 1
        self.stan = n if 1 <= n <= STAN_MAX else 1
        return f"{self.stan:06d}"

    def request(self) -> tuple[str, bytes]:
        """Take the next STAN; return it and the sale's body (MTI..64, MAC under the MAK)."""
        stan = self.next_stan()
        fields = self._template.copy()
        fields[11] = stan
        return stan, CODEC.encode(Message(SALE.mti, fields), mac=self._mac)

    def check(self, stan: str, body: bytes) -> tuple[str, str]:
        """(response code, problem) of the reply ``body`` to the sale with ``stan``.

        ``problem`` is "" when the reply answers the sale and is authenticated, else why not:
        ``decode``, ``mti``, ``field N``, ``mac`` (a MAC that does not verify, whatever 39
        says, or an approval without one: section 10 and docs/decisions.md R3), ``unmacd``
        (a decline without a MAC, which the core would keep a reversal for) or ``resign``
        (39 asks for a new sign-on, which the core would do and retry).
        """
        try:
            reply = CODEC.decode(body)
        except CodecError:
            return "", "decode"
        code = reply.text(39)
        if reply.mti != "0210":
            return code, "mti"
        if reply.text(11) != stan:
            return code, "field 11"
        if reply.text(41) != self.terminal_id:
            return code, "field 41"
        template = self._template
        if reply.text(3) != template[3]:
            return code, "field 3"
        if code != "10" and 4 in reply and reply.text(4) != template[4]:
            return code, "field 4"
        if code == "00" and reply.text(42) != template[42]:
            return code, "field 42"
        if 64 in reply:
            if not reply_mac_ok(self._state, reply):
                return code, "mac"
        elif code in APPROVED:
            return code, "mac"
        else:
            return code, "unmacd"
        if code in RESIGN:
            return code, "resign"
        return code, ""
