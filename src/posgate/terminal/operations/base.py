"""Shared building blocks of the terminal's operations (sans-IO core).

Theory of operation: every online step of a terminal flow is a small module with three pure
functions — ``build`` (state → request :class:`Message`), ``on_reply`` and ``on_timeout`` —
and this module holds what they share: the :class:`Step` and :class:`Flow` records the
machine moves along, card data → fields 2/14/22/23/26/35/36/52/53/55, field 60, the MAC
(5.3/D4) and the reply validation of section 10, and the :class:`Result` a cashier sees.

It must never read the clock, a random source, a socket or a database: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from posgate.crypto import (
    SM4,
    cup_ecb_mac,
    des_encrypt,
    encrypt_pin,
    encrypt_pin_block,
    encrypt_track,
    mac_verify,
    pin_block_format1,
    pin_block_format3,
)
from posgate.crypto.pinblock import random_fill_af
from posgate.dialect import profiles
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import SM4_PIN_PREFIX, Field60, Field63
from posgate.dialect.operations import OPERATIONS, Operation
from posgate.dialect.profiles import Profile
from posgate.dialect.qr import field59, is_qr_entry
from posgate.domain.masking import mask_pan, split_track
from posgate.domain.response_codes import APPROVED, describe
from posgate.iso8583 import TLV, Codec, CodecError, Message
from posgate.terminal.state import Event, TerminalState, TxnEntry

# ------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class Card:
    """What the card reader and PIN pad produced. Lives only in the in-flight flow."""

    pan: str = field(repr=False)
    entry: str = "swipe"  # swipe | insert | tap | manual | fallback
    track2: str = field(default="", repr=False)
    track3: str = field(default="", repr=False)
    expiry: str = field(default="", repr=False)  # YYMM
    seq: str = ""  # card sequence number (IC, 5F34)
    icc: TLV | None = field(default=None, repr=False)
    pin: str = field(default="", repr=False)
    organisation: str = ""  # card organisation as the reader knows it (CUP, VIS...); "" = by BIN
    # A personalised chip card's AC master key (issue 14): what the card itself uses to check the
    # issuer's ARPC and to make its TC. Inside the simulated card only; never persisted.
    chip_key: bytes | None = field(default=None, repr=False)

    @property
    def ic(self) -> bool:
        return self.entry in ("insert", "tap")

    @property
    def org(self) -> str:
        """The card organisation: the reader's, else from the PAN's BIN (:func:`organisation_of`)."""
        return self.organisation or organisation_of(self.pan)


def organisation_of(pan: str) -> str:
    """The card organisation of a PAN by its BIN, in the 3-letter codes of 63.1 (CUP, VIS, MCC,
    JCB, AMX, DCC): what the terminal goes by when no host reply has told it (an offline sale
    before its advice is acknowledged), the same way the host's issuer classifies the card —
    ``CUP`` is domestic in the settlement totals (9.1), anything else foreign. Unknown BINs
    are taken as CUP (a domestic acquirer's default)."""
    p2 = int(pan[:2]) if pan[:2].isdigit() else 0
    p4 = int(pan[:4]) if pan[:4].isdigit() and len(pan) >= 4 else 0
    if pan.startswith("4"):
        return "VIS"
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "MCC"
    if 3528 <= p4 <= 3589:
        return "JCB"
    if p2 in (34, 37):
        return "AMX"
    if p2 in (36, 38, 39) or 3000 <= p4 <= 3059:
        return "DCC"
    return "CUP"


@dataclass(frozen=True, slots=True)
class Input:
    """One request from the cashier (or the CLI, TUI, load generator)."""

    operation: str  # sign_on, sign_off, echo, balance, sale, void, refund, preauth, preauth_void,
    # completion, completion_void, offline, settlement, signature, parameter_download, status_upload
    amount: int = 0
    card: Card | None = None
    operator: str = "01"
    voucher: str = ""  # original STAN (void, completion void, signature)
    rrn: str = ""  # original RRN (refund)
    orig_date: str = ""  # original date MMDD (refund, pre-auth family)
    auth_code: str = ""  # original auth code (pre-auth void / completion / offline)
    scheme: str = ""  # sign-on key scheme
    cause: str = "manual"  # sign-on cause
    signature: bytes = field(default=b"", repr=False)  # JBIG image for the e-signature upload
    tip: int = 0
    kind: str = ""  # offline: settlement | adjust | tip


# ------------------------------------------------------------------ flow records


@dataclass(frozen=True, slots=True)
class Step:
    """One message exchange (or a local action) in a flow."""

    kind: str  # the operation module that handles it
    cause: str = ""
    ref: str = ""  # STAN of the transaction an offline / signature / batch upload step is about
    data: Any = None
    primary: bool = False  # its reply decides the flow's result
    secondary: bool = False  # trickle: failures do not change the result; a timeout stops the trickle


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of an operation as a cashier (or a script) sees it."""

    operation: str
    approved: bool = False
    response_code: str = ""
    message_zh: str = ""
    message_en: str = ""
    error: str = ""  # "" | timeout | comm | mismatch | mac | key_check | refused | reversal | unconfirmed | pending
    stan: str = ""
    batch: str = ""
    amount: int = 0
    rrn: str = ""
    auth_code: str = ""
    pan_masked: str = ""
    card_org: str = ""
    balance: int | None = None
    date: str = ""
    time: str = ""
    notices: tuple[str, ...] = ()
    settlement: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # What the cashier does next. Every result that carries a host response code has one
    # (domain.response_codes: "invalid merchant [03]" alone does not say "call your acquirer").
    action_zh: str = ""
    action_en: str = ""

    def __post_init__(self) -> None:
        if self.response_code and not self.action_zh:
            rc = describe(self.response_code)
            object.__setattr__(self, "action_zh", rc.action_zh)
            object.__setattr__(self, "action_en", rc.action_en)

    @property
    def message(self) -> str:
        return f"{self.message_zh} / {self.message_en}" if self.message_en else self.message_zh

    @property
    def action(self) -> str:
        return f"{self.action_zh} / {self.action_en}" if self.action_en else self.action_zh

    @property
    def action_worth_showing(self) -> bool:
        """A plain approval's action ("done") goes without saying on a screen."""
        return bool(self.action_zh) and not (self.approved and self.response_code in ("00", "11"))

    @property
    def exit_code(self) -> int:
        """0 approved, 1 declined by the host, 2 error (no answer, bad answer, refused locally)."""
        if self.approved:
            return 0
        return 2 if self.error else 1

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "operation": self.operation,
            "approved": self.approved,
            "response_code": self.response_code,
            "message": self.message,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "action": self.action,
            "action_zh": self.action_zh,
            "action_en": self.action_en,
            "error": self.error,
            "stan": self.stan,
            "batch": self.batch,
            "amount": self.amount,
            "rrn": self.rrn,
            "auth_code": self.auth_code,
            "pan_masked": self.pan_masked,
            "card_org": self.card_org,
            "date": self.date,
            "time": self.time,
            "notices": list(self.notices),
        }
        if self.balance is not None:
            d["balance"] = self.balance
        if self.settlement is not None:
            d.update(self.settlement)
        d.update(self.extra)
        return d


@dataclass(frozen=True, slots=True)
class Flow:
    """The operation in progress: a queue of steps and what the current one sent."""

    input: Input
    queue: tuple[Step, ...] = ()
    current: Step | None = None
    request: Message | None = None  # what the current step sent (without MAC)
    result: Result | None = None
    notices: tuple[str, ...] = ()
    retried: bool = False
    obeyed: frozenset[str] = frozenset()
    data: Mapping[str, Any] = field(default_factory=dict)

    def note(self, text: str) -> Flow:
        return replace(self, notices=(*self.notices, text))

    def push_front(self, *steps: Step) -> Flow:
        return replace(self, queue=(*steps, *self.queue))

    def push_back(self, *steps: Step) -> Flow:
        return replace(self, queue=(*self.queue, *steps))

    def with_data(self, **kw: Any) -> Flow:
        return replace(self, data={**self.data, **kw})


# ------------------------------------------------------------------ helpers


class TerminalError(ValueError):
    """An operation the terminal refuses to start (bad input, nothing to void, not signed on...).
    The message is what the cashier sees; nothing was sent and the state is unchanged."""


def local(state: TerminalState, now: datetime) -> datetime:
    """``now`` (an aware datetime) in the terminal's time zone."""
    if now.tzinfo is None:
        return now
    return now.astimezone(ZoneInfo(state.config.timezone))


def iso(state: TerminalState, now: datetime) -> str:
    return local(state, now).replace(microsecond=0).isoformat()


def event(
    state: TerminalState, now: datetime, kind: str, cause: str = "", result: str = "", detail: str = ""
) -> TerminalState:
    return state.with_event(Event(iso(state, now), kind, cause, result, detail))


def op(name: str) -> Operation:
    return OPERATIONS[name]


def dialect_of(state: TerminalState) -> Profile:
    """The dialect profile the device speaks (its firmware's; configured, never negotiated)."""
    try:
        return profiles.get(state.config.dialect)
    except KeyError:
        raise TerminalError(f"未知报文方言 / unknown dialect profile {state.config.dialect!r}") from None


def mac_of(state: TerminalState, mab: bytes) -> bytes:
    keys = state.keys
    if keys is None:
        raise TerminalError("未签到 / not signed on: no MAC key")
    if keys.cipher is SM4:  # 国密: the CUP method with SM4 and 16-byte blocks (4.4), whatever the profile
        return cup_ecb_mac(keys.mak, mab, SM4)
    return dialect_of(state).mac_function(keys.mak, state.config.mac_algorithm)(mab)


def reply_mac_ok(state: TerminalState, reply: Message) -> bool:
    mac = reply.data(64)
    if mac is None or state.keys is None or reply.raw is None:
        return False
    return mac_verify(mac_of(state, reply.mac_block()), mac)


def field60(type_code: str, batch: str, nmic: str, card: Card | None = None, *, partial: bool = False) -> str:
    if card is None:
        return Field60(type_code, batch, nmic).format()
    return Field60(
        type_code,
        batch,
        nmic,
        "6" if card.entry == "tap" else "5",
        "2" if card.entry == "fallback" else "0",
        "1" if partial else "",
    ).format()


_ENTRY = {"manual": "01", "swipe": "02", "fallback": "02", "insert": "05", "tap": "07", "qr": "03"}
REVERSAL_55_TAGS = ("95", "9F1E", "9F10", "9F36", "DF31")


def card_fields(state: TerminalState, card: Card, *, want_pin: bool = True) -> dict[int, Any]:
    """Fields 2, 14, 22, 23, 26, 35, 36, 52, 53, 55 for the card as read (spec 2, 6)."""
    if card.entry not in _ENTRY:
        raise TerminalError(f"unknown entry mode {card.entry!r} (swipe, insert, tap, manual)")
    if card.entry == "qr":
        return qr_fields(card)
    keys = state.keys
    f: dict[int, Any] = {}
    pin = bool(card.pin) and want_pin
    f[22] = _ENTRY[card.entry] + ("1" if pin else "2")
    if card.entry == "manual" or card.ic or not card.track2:
        f[2] = card.pan
        if card.expiry:
            f[14] = card.expiry
    if card.ic:
        if card.seq:
            f[23] = card.seq.zfill(3)
        if card.icc is not None:
            f[55] = card.icc
    encrypted = False
    if card.entry != "manual":
        tdk = keys.tdk if keys else None
        use_tdk = tdk is not None and state.config.encrypt_tracks and state.key_scheme in ("004", "006")
        enc2 = enc3 = ""
        # The wire form of a track writes its separator '=' (a reader may hand over nibble D).
        track2, track3 = _wire_track(card.track2), _wire_track(card.track3)
        if use_tdk and tdk is not None and keys is not None:
            # Encrypted tracks carry hex nibbles A-F; send them only if the codec can carry
            # them (a codec limited to digits and '=' cannot), else fall back to clear tracks.
            # separator="=": the ciphertext's D nibbles must be written the way the codec
            # writes nibble D, whatever the reader's form.
            enc2 = encrypt_track(tdk, track2, separator="=", cipher=keys.cipher) if track2 else ""
            enc3 = encrypt_track(tdk, track3, separator="=", cipher=keys.cipher) if track3 else ""
            use_tdk = _encodable(35, enc2) and _encodable(36, enc3)
        if track2:
            f[35] = enc2 if use_tdk else track2
            encrypted = use_tdk
        if track3:
            f[36] = enc3 if use_tdk else track3
            encrypted = encrypted or use_tdk
    if pin:
        if keys is None:
            raise TerminalError("未签到 / not signed on: no PIN key")
        f[26] = "12"
        if keys.cipher is SM4:
            # The 16-byte SM4 block does not fit 52 (b64): 62 = SM016 + block, 52 zeros (4.4).
            # SM4 wins over the profile's PIN format (a DES one).
            f[52] = bytes(8)
            f[62] = SM4_PIN_PREFIX + encrypt_pin(keys.pik, card.pin, card.pan, SM4)
        else:
            f[52] = pin_block(state, keys.pik, card)
    if pin or encrypted:
        double = keys is not None and len(keys.pik) >= 16
        alg = "4" if keys is not None and keys.cipher is SM4 else ("6" if double else "0")
        f[53] = "2" + alg + ("1" if encrypted else "0") + "0" * 13
    return f


def pin_block(state: TerminalState, pik: bytes, card: Card) -> bytes:
    """Field 52 in the profile's ISO 9564 format. Formats 1 and 3 need transaction-unique fill:
    the core draws no randomness, so the fill is derived from the PIK over the terminal id,
    batch and STAN (unique per transaction, unpredictable without the key)."""
    fmt = dialect_of(state).pin_format
    if fmt == 0:
        return encrypt_pin(pik, card.pin, card.pan)
    # 8 bytes: batch and STAN in BCD (digits by construction), the TID's last two characters
    # as ASCII (a TID is ans8: it need not be hex).
    seed = bytes.fromhex(f"{state.batch:0>6}{state.stan:06d}") + state.config.terminal_id.encode()[-2:].rjust(2, b"0")
    stream = des_encrypt(pik, seed) + des_encrypt(pik, bytes(b ^ 0xFF for b in seed))
    if fmt == 1:
        return encrypt_pin_block(pik, pin_block_format1(card.pin, stream[:7]))
    taken = iter(stream[i : i + 1] for i in range(len(stream)))
    fill = random_fill_af(lambda n: b"".join(next(taken, b"\x00") for _ in range(n)))
    return encrypt_pin_block(pik, pin_block_format3(card.pin, card.pan, fill))


def qr_fields(card: Card) -> dict[int, Any]:
    """A scanned payment code (docs/decisions.md Q1): 22 = 032 (scanned, no PIN at the POS) and
    the code in 59 as tag A3 + length + code; no 2, 14, 35 or PIN block."""
    return {22: "032", 59: field59(card.pan)}


def advice_card_fields(card: Card) -> dict[int, Any]:
    """The card as an advice carries it (refund, like an offline advice: 3.1b marks the track
    and PIN fields conditional): 2 (PAN), 14 (expiry, from the track when not read apart), 22
    (the entry mode as read, no PIN), and 23/55 for a chip read. No track, no PIN block: the
    advice is kept as sent until acknowledged and re-sent with the same content, which a
    track or PIN block encrypted under this sign-on's keys could not be (and must not be kept)."""
    if card.entry not in _ENTRY:
        raise TerminalError(f"unknown entry mode {card.entry!r} (swipe, insert, tap, manual)")
    if card.entry == "qr":
        return qr_fields(card)
    expiry = card.expiry
    after = split_track(card.track2)[1] if card.track2 else None
    if not expiry and after:
        expiry = after[:4]
    f: dict[int, Any] = {2: card.pan, 22: _ENTRY[card.entry] + "2"}
    if expiry:
        f[14] = expiry
    if card.ic:
        if card.seq:
            f[23] = card.seq.zfill(3)
        if card.icc is not None:
            f[55] = card.icc
    return f


def _wire_track(track: str) -> str:
    """A clear track with its separator written ``=`` (a clear track has no other D)."""
    return track.upper().replace("D", "=")


def _encodable(number: int, value: str) -> bool:
    if not value:
        return True
    try:
        CODEC.encode_field(number, value)
    except CodecError:
        return False
    return True


def category(card: Card | None) -> str:
    """Header application category: 61 for IC (insert/tap), else 60 (D2)."""
    return "61" if card is not None and card.ic else "60"


def base_fields(state: TerminalState, stan: str) -> dict[int, Any]:
    return {11: stan, 41: state.config.terminal_id, 42: state.config.merchant_id}


def response_mti(mti: str) -> str:
    return f"{int(mti) + 10:04d}"


# Field 39 is two characters of the response-code table's alphabet (section 7: digits and
# upper-case letters, acquirer extensions such as 1N or BA included). Anything else is a reply
# damaged on the way, not a decline.
RESPONSE_CODE_ALPHABET = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def valid_response_code(code: str) -> bool:
    return len(code) == 2 and all(c in RESPONSE_CODE_ALPHABET for c in code)


def check_reply(state: TerminalState, request: Message, reply: Message, *, mac: bool) -> str:
    """Section 10 reply validation, plus docs/decisions.md R3. Returns "" when the reply
    answers ``request``, else the reason it does not: ``mti``, ``field N`` (``field 39``: not
    two characters of the response-code alphabet) or ``mac``.

    With ``mac`` (the request carried one): a reply that carries field 64 must verify
    whatever 39 says (a one-bit flip turns an approval into a decline, and only the MAC tells);
    an approval (39 in the accepted set) must carry one. A decline without field 64 passes
    here but is *unauthenticated* (:func:`authenticated`): the caller must not take it as the
    host's final word (a reversible request keeps its reversal, an advice stays queued)."""
    if reply.mti != response_mti(request.mti):
        return "mti"
    code = reply.text(39)
    for f in (3, 11, 41):
        if f in request and reply.text(f) != request.text(f):
            return f"field {f}"
    if 4 in request and code != "10" and 4 in reply and reply.text(4) != request.text(4):
        return "field 4"
    if code == "00" and 42 in request and reply.text(42) != request.text(42):
        return "field 42"
    if not valid_response_code(code):
        return "field 39"
    if mac:
        if 64 in reply:
            if not reply_mac_ok(state, reply):
                return "mac"
        elif code in APPROVED:
            return "mac"
    return ""


def authenticated(reply: Message, *, mac: bool) -> bool:
    """After :func:`check_reply` passed: whether the reply is the host's authenticated word
    (it carries a verified MAC, or the exchange carries none)."""
    return not mac or 64 in reply


def decode_reply(reply: bytes | Message, codec: Codec = CODEC) -> Message | None:
    if isinstance(reply, Message):
        return reply
    try:
        return codec.decode(reply)
    except CodecError:
        return None


def code_result(name: str, code: str, **kw: Any) -> Result:
    rc = describe(code)
    return Result(
        name, approved=code in APPROVED, response_code=code, message_zh=rc.zh, message_en=rc.en, **kw
    )


def error_result(name: str, error: str, zh: str, en: str, **kw: Any) -> Result:
    return Result(name, approved=False, error=error, message_zh=zh, message_en=en, **kw)


def reply_details(reply: Message, card_org: str = "CUP") -> dict[str, Any]:
    """The parts of a financial reply a result and a slip show. The card organisation is the
    host's (63.1) when the reply carries one, else ``card_org`` (the card's own, by BIN)."""
    f63 = Field63.parse(reply.text(63)) if reply.text(63) else Field63(card_org)
    return {
        "rrn": reply.text(37).strip(),
        "auth_code": reply.text(38).strip(),
        "card_org": f63.code.strip() or card_org,
        "date": reply.text(13),
        "time": reply.text(12),
    }


def entry_from(
    state: TerminalState,
    now: datetime,
    name: str,
    stan: str,
    amount: int,
    card: Card | None,
    request: Message,
    reply: Message | None,
    operator: str,
    **kw: Any,
) -> TxnEntry:
    """A transaction-log entry for an approved (or offline) transaction. No track, no PIN."""
    lt = local(state, now)
    pan = card.pan if card is not None else kw.pop("pan", "")
    org = card.org if card is not None else organisation_of(pan)
    det = reply_details(reply, org) if reply is not None else {}
    f44 = reply.text(44) if reply is not None else ""
    # A QR payment is confirmed on the customer's phone: no signature (Q4).
    qr = is_qr_entry(request.text(22))
    sig = "unsigned" if (op(name).settlement == "debit" or name == "preauth") and not qr else ""
    values: dict[str, Any] = {
        "stan": stan,
        "batch": state.batch,
        "operation": name,
        "amount": amount,
        "pan": pan,
        "expiry": (card.expiry if card is not None else "") or "",
        "entry_mode": request.text(22),
        "card_org": det.get("card_org", org),
        "rrn": det.get("rrn", ""),
        "auth_code": det.get("auth_code", ""),
        "response_code": reply.text(39) if reply is not None else "",
        "date": det.get("date") or lt.strftime("%m%d"),
        "time": det.get("time") or lt.strftime("%H%M%S"),
        "at": lt.replace(microsecond=0).isoformat(),
        "operator": operator,
        "signature": sig,
        "card_seq": request.text(23),
        "icc": request.data(55) or b"",
        "issuer_bank": f44[0:11].strip(),
        "acquirer_bank": f44[11:22].strip(),
        "settlement_date": reply.text(15) if reply is not None else "",
    }
    values.update(kw)
    return TxnEntry(**values)


def masked(card: Card | None) -> str:
    return mask_pan(card.pan) if card is not None and card.pan else ""
