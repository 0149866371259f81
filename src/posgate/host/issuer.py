"""The built-in issuer: the default :class:`~posgate.host.ports.Issuer`, a card-issuing bank
simulated over an :class:`~posgate.host.ports.IssuerStore` (the ``cards`` table).

Theory of operation
-------------------
One method, :meth:`BuiltinIssuer.authorize`, answers one :class:`IssuerRequest` with an
:class:`IssuerResult`. The rules are docs/demo-data.md's, in this order:

1. unknown PAN → ``14``;
2. undo requests (``reverse_*``) are applied without any check — they give back what an
   earlier approval took;
3. card state: lost ``41``, stolen ``43``, restricted ``62``, any other non-active ``05``;
   expired (card expiry YYMM before the current month) ``54``;
4. ``force_debit`` (offline advices) posts now: the money already moved at the counter;
5. PIN, when a block is sent (decrypted with the zone key, compared through the store's
   verifier, never stored): wrong → ``55``; the third wrong PIN of the day → ``75`` and the
   PIN stays blocked (``75``) until the next day; a right PIN resets the count;
6. per-transaction limit ``61``; 7. available balance (balance − held) ``51``.

Fallback (docs/decisions.md C4): a sale, pre-authorisation or balance inquiry read from the
stripe (22 = 02x) of a card whose record says it carries a chip is declined ``45`` unless the
terminal marks it as a fallback after a chip failure (60.5 = ``2``); checked after the card's
state and expiry, before the PIN (a cashier told to insert the chip has cost the cardholder no
PIN try). The card record decides, not the track's service code (every demo card's track says
``201``). Refunds, voids and completions refer to an original and are not checked.

Scan-to-pay (docs/decisions.md Q1–Q3): a wallet payment code is kept like a card (hashed,
encrypted); a code in state ``password`` stands for a wallet that holds the payment until the
customer enters a password on the phone: a ``debit`` is answered ``09`` (in progress) and
changes nothing; the terminal's query then asks ``confirm_debit``, which is the debit itself
(the customer has entered the password). ``confirm_debit`` of any other code is a plain debit.

A card state or limit is always checked before the balance.

Chip cards (issue 14, docs/decisions.md C1): a request whose field 55 carries an ARQC (9F26)
for a card holding issuer master keys is checked before the rules above: an ATC (9F36) not
above the highest one seen → ``59``; a cryptogram that does not verify (EMV option A card key,
common session key for the ATC, ISO 9797-1 MAC algorithm 3 over the CDOL1 data) → ``59``; a
debit or hold for another amount than the card signed (9F02) → ``59``; an unreadable field 55
→ ``30``. Once the ARQC verifies, the ATC is recorded and the answer,
whatever it is, carries tag 91 = ARPC (method 1) ‖ ARC so that the card can tell it came from
its issuer. Undo requests and offline advices are never checked (the money already moved).
``verify_tc`` (the batch upload's 203/205) checks the transaction certificate the card made
after the ARPC: ``00`` or ``59``, nothing moved. A payment code (QR, entry mode 03x, field 59)
has no field 55 and is never checked. Approvals take an auth code
from the store (unique across host processes). The organisation (``CUP``, ``VIS``...) comes
back in every answer about a known card: it decides domestic vs foreign totals (9.1).

Must never: log or raise with a PAN or PIN; keep a PIN block; read the clock (``now`` is
passed in) or a random source (the zone key is passed in, or drawn from ``randbytes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from posgate.crypto import CryptoError, decrypt_pin, generate_working_keys
from posgate.crypto.emv import (
    arc_of,
    arpc_method1,
    cdol1_data,
    derive_card_key,
    derive_session_key,
    verify_ac,
)
from posgate.host.context import zone
from posgate.host.ports import CardRecord, IssuerRequest, IssuerResult, IssuerStore
from posgate.iso8583 import TLV
from posgate.iso8583.errors import CodecError

PIN_TRIES = 3
_STATE_CODES = {"lost": "41", "stolen": "43", "restricted": "62"}
# Docs/decisions.md C4: a chip card swiped without the fallback indicator.
FALLBACK_REFUSED = "45"
_CARD_PRESENT_KINDS = frozenset({"debit", "hold", "balance"})
PENDING = "09"  # request in progress (section 7): the wallet waits for the customer's password
_UNDO = frozenset({"reverse_debit", "reverse_credit", "reverse_capture", "reverse_release", "reverse_hold"})
# A chip card whose cryptogram fails or whose ATC goes backwards (docs/decisions.md C1): the
# dialect's 59 "有作弊嫌疑 / 卡片校验错" (suspected fraud / card check error), a plain decline.
ICC_REFUSED = "59"


class BuiltinIssuer:
    def __init__(self, store: IssuerStore, zone_key: bytes, timezone: str = "Asia/Shanghai") -> None:
        self._store = store
        self._zone_key = zone_key
        self._tz = zone(timezone)  # the issuer's business day (PIN tries, expiry month)
        # (from, until, YYMM, YYYY-MM-DD): the local day that the last ``now`` fell in, as a UTC
        # range, so that the next requests of that day skip the time zone conversion.
        self._day: tuple[datetime, datetime, str, str] | None = None

    @classmethod
    def with_random_zone_key(cls, store: IssuerStore, randbytes: Callable[[int], bytes],
                             timezone: str = "Asia/Shanghai") -> BuiltinIssuer:  # fmt: skip
        """A fresh double-length zone key for this process (the built-in issuer lives in it)."""
        return cls(store, generate_working_keys("003", randbytes).pik, timezone)

    @property
    def zone_key(self) -> bytes:
        return self._zone_key

    def __repr__(self) -> str:
        return "BuiltinIssuer()"

    def authorize(self, request: IssuerRequest, now: datetime) -> IssuerResult:
        if request.kind == "verify_tc":
            return self._check_tc(request)
        if request.icc is None or request.kind in _UNDO or request.kind == "force_debit":
            return self._authorize_card(request, now)
        chip = self._check_arqc(request)
        if isinstance(chip, IssuerResult):
            return chip
        result = self._authorize_card(request, now)
        if chip is None:
            return result
        session_key, arqc = chip
        arc = arc_of(result.response_code)
        return replace(result, icc=TLV([("91", arpc_method1(session_key, arqc, arc) + arc)]).raw)

    def _check_tc(self, request: IssuerRequest) -> IssuerResult:
        """A chip transaction's TC from the batch upload (203/205): ``00`` when it verifies (or the
        card is not one we hold keys for), ``59`` when not; moves no money, records nothing. The
        TC is the card's MAC over ARC (8A) ‖ CDOL1 data under the session key of its ATC, an ATC
        the issuer has already seen with the ARQC (so not above the last one)."""
        store = self._store
        card = store.card(store.pan_hash(request.pan))
        if card is None:  # not one of ours: nothing to check it with
            return IssuerResult("00", organisation="")
        org, bank = card.organisation, card.organisation + request.pan[:6]
        if not card.chip or card.icc_keys_enc is None or request.icc is None:
            return IssuerResult("00", None, None, org, bank)
        try:
            tags = {t: v for t, v in TLV.decode(request.icc).items if isinstance(v, bytes)}
            tc, atc, arc = tags.get("9F26"), tags.get("9F36"), tags.get("8A")
            if tc is None or atc is None or arc is None or tags.get("9F27") != b"\x40":
                return IssuerResult(ICC_REFUSED, None, None, org, bank)
            n = int.from_bytes(atc, "big")
            if card.icc_atc is None or n > card.icc_atc:
                return IssuerResult(ICC_REFUSED, None, None, org, bank)  # no ARQC was ever verified for it
            psn = request.pan_seq[-2:] if request.pan_seq else "00"
            imk_ac = store.icc_master_keys(card.icc_keys_enc)[:16]
            session_key = derive_session_key(derive_card_key(imk_ac, request.pan, psn), n)
            ok = verify_ac(session_key, arc + cdol1_data(tags), tc)
        except (CodecError, CryptoError):
            return IssuerResult("30", None, None, org, bank)
        return IssuerResult("00" if ok else ICC_REFUSED, None, None, org, bank)

    def _check_arqc(self, request: IssuerRequest) -> IssuerResult | tuple[bytes, bytes] | None:
        """``None``: nothing to check (no cryptogram, or a card without issuer keys); a refusal;
        or the session key and the verified ARQC, for the ARPC."""
        store = self._store
        assert request.icc is not None
        pan_hash = store.pan_hash(request.pan)
        card = store.card(pan_hash)
        if card is None or not card.chip or card.icc_keys_enc is None:
            return None
        org = card.organisation
        bank = org + request.pan[:6]
        try:
            tags = TLV.decode(request.icc)
        except CodecError:
            return IssuerResult("30", None, None, org, bank)
        arqc, atc_raw = tags.get("9F26"), tags.get("9F36")
        if not isinstance(arqc, bytes):
            return None  # no cryptogram in this field 55 (e.g. a reduced one): nothing to verify
        if len(arqc) != 8 or not isinstance(atc_raw, bytes) or len(atc_raw) != 2:
            return IssuerResult("30", None, None, org, bank)
        atc = int.from_bytes(atc_raw, "big")
        if card.icc_atc is not None and atc <= card.icc_atc:
            return IssuerResult(ICC_REFUSED, None, None, org, bank)  # a replayed or stale cryptogram
        try:
            data = cdol1_data({t: v for t, v in tags.items if isinstance(v, bytes)})
            imk_ac = store.icc_master_keys(card.icc_keys_enc)[:16]
            psn = request.pan_seq[-2:] if request.pan_seq else "00"
            session_key = derive_session_key(derive_card_key(imk_ac, request.pan, psn), atc)
        except CryptoError:
            return IssuerResult("30", None, None, org, bank)
        if not verify_ac(session_key, data, arqc):
            return IssuerResult(ICC_REFUSED, None, None, org, bank)
        store.update_card(pan_hash, icc_atc=atc)
        amount = tags.get("9F02")
        if request.kind in ("debit", "hold") and isinstance(amount, bytes) and amount.hex() != f"{request.amount:012d}":
            return IssuerResult(ICC_REFUSED, None, None, org, bank)  # the card signed another amount than field 4
        return session_key, arqc

    def _authorize_card(self, request: IssuerRequest, now: datetime) -> IssuerResult:
        # One decision, then at most one card write and one auth code (written out flat, not
        # with per-call helper closures: this runs for every authorisation).
        store = self._store
        pan_hash = store.pan_hash(request.pan)
        card = store.card(pan_hash)
        if card is None:
            return IssuerResult("14", organisation="")
        kind, amount = request.kind, request.amount
        org = card.organisation
        bank = org + request.pan[:6]
        changes: dict[str, object] | None = None
        balance: int | None = None
        if kind in _UNDO:
            if kind == "reverse_debit":
                changes = {"balance": card.balance + amount}
            elif kind == "reverse_credit":
                changes = {"balance": card.balance - amount}
            elif kind == "reverse_capture":
                changes = {"balance": card.balance + amount, "held": card.held + request.hold_amount}
            elif kind == "reverse_hold":  # undo hold (a reversed pre-authorisation): no checks, as any undo
                changes = {"held": max(card.held - amount, 0)}
            else:  # reverse_release
                changes = {"held": card.held + amount}
        else:
            state = card.state
            if state == "password":  # a payment code whose wallet waits for the password
                if kind == "debit":
                    return IssuerResult(PENDING, None, None, org, bank)
                state = "active"
            if kind == "confirm_debit":
                kind = "debit"
            if state != "active":
                return IssuerResult(_STATE_CODES.get(state, "05"), None, None, org, bank)
            month, today = self._local_day(now)
            if card.expiry < month:
                return IssuerResult("54", None, None, org, bank)
            if card.chip and request.swiped and not request.fallback and kind in _CARD_PRESENT_KINDS:
                return IssuerResult(FALLBACK_REFUSED, None, None, org, bank)
            if kind == "force_debit":
                changes = {"balance": card.balance - amount}
            else:
                if request.pin_block is not None:
                    refused = self._check_pin(card, request, today)
                    if refused:
                        return IssuerResult(refused, None, None, org, bank)
                available = card.balance - card.held
                if kind == "balance":
                    balance = available
                elif kind == "credit":
                    changes, balance = {"balance": card.balance + amount}, available + amount
                elif kind == "release_hold":
                    changes = {"held": max(card.held - amount, 0)}
                    balance = available + min(amount, card.held)
                elif card.per_txn_limit is not None and amount > card.per_txn_limit:
                    return IssuerResult("61", None, None, org, bank)
                elif kind == "debit":
                    if amount > available:
                        return IssuerResult("51", None, None, org, bank)
                    changes, balance = {"balance": card.balance - amount}, available - amount
                elif kind == "hold":
                    if amount > available:
                        return IssuerResult("51", None, None, org, bank)
                    changes, balance = {"held": card.held + amount}, available - amount
                elif kind == "capture_hold":
                    released = min(request.hold_amount, card.held)
                    if amount > available + released:
                        return IssuerResult("51", None, None, org, bank)
                    held = card.held - released
                    changes, balance = {"balance": card.balance - amount, "held": held}, card.balance - amount - held
                else:
                    return IssuerResult("40", None, None, org, bank)
        if changes:
            store.update_card(pan_hash, **changes)
        return IssuerResult("00", store.next_auth_code(), balance, org, bank)

    def _local_day(self, now: datetime) -> tuple[str, str]:
        """``now``'s month (YYMM) and day (YYYY-MM-DD) in the issuer's time zone."""
        day = self._day
        if day is not None and now.tzinfo is UTC and day[0] <= now < day[1]:
            return day[2], day[3]
        local = now.astimezone(self._tz)
        month, today = f"{local.year % 100:02d}{local.month:02d}", local.date().isoformat()
        # The day's first instant (fold=0: the first of two midnights when clocks go back at one).
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        start, end = midnight.astimezone(UTC), (midnight + timedelta(days=1)).astimezone(UTC)
        if now.tzinfo is UTC and start <= now < end:  # kept only for aware UTC (env.now()), compared as such
            self._day = (start, end, month, today)
        return month, today

    def _check_pin(self, card: CardRecord, request: IssuerRequest, today: str) -> str | None:
        store = self._store
        tries = card.pin_tries if card.pin_tries_day == today else 0
        if tries >= PIN_TRIES:
            return "75"
        assert request.pin_block is not None
        try:
            pin = decrypt_pin(request.pin_key or self._zone_key, request.pin_block, request.pan)
            right = store.pin_verifier(request.pan, pin) == card.pin_verifier
        except CryptoError:
            right = False
        if right:
            if card.pin_tries:
                store.update_card(card.pan_hash, pin_tries=0, pin_tries_day=today)
            return None
        tries += 1
        store.update_card(card.pan_hash, pin_tries=tries, pin_tries_day=today)
        return "75" if tries >= PIN_TRIES else "55"
