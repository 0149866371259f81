"""Which dialect profile a message was written in, from its bytes alone (``posgate decode``).

The profiles (``posgate.dialect.profiles``) differ in a few places a reader can see without
keys: whether the body decodes at all with a profile's field table (gz-bill's ASCII field 48),
the digits after 60.3 (gz-bill's 5-digit tail, which the baseline refuses), the processing and
condition codes (gz-bill's 190000 / 280000 / 81), the shape of field 64 (the CUP ECB MAC is 8
ASCII hex characters, upper-case; easy8583 writes them in lower case; X9.9 and X9.19 are 8
binary bytes), and field 62's ``SM016`` PIN block of an SM4 terminal, which speaks the
baseline only. What no byte tells apart — the PIN block format (needs the PIK), or anything at
all in a message without a MAC and without a profile's fields — is reported as ambiguous: the
message is then decoded with the baseline and every profile still possible is listed.

Each rule only removes candidates; the reason names the rules that did. Field 59 (a payment
code, tag A3) is read the same by every profile, so it separates none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from posgate.dialect.fields import SM4_PIN_PREFIX
from posgate.dialect.profiles import BASELINE, PROFILES, Profile
from posgate.iso8583 import CodecError, Message

_BASELINE_TAILS = (0, 1, 2, 3, 6)  # digits after 60.3 the baseline's 60.4-60.7 can take
_HEX_UPPER = frozenset(b"0123456789ABCDEF")
_HEX_LOWER = frozenset(b"0123456789abcdef")
_DIGITS = frozenset(b"0123456789")


@dataclass(frozen=True)
class Detection:
    profile: Profile
    reason: str
    candidates: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def _mac_family(name: str) -> str:
    p = PROFILES[name]
    return {"x9.9": "cbc", "x9.19": "cbc", "cup-lower": "lower"}.get(p.mac or "cup", "upper")


def detect(body: bytes) -> tuple[Message, Detection]:
    """Decode ``body`` (MTI onwards) with the profile its bytes point to. Raises the baseline's
    :class:`CodecError` when no profile can read it."""
    decoded: dict[str, Message] = {}
    errors: dict[str, CodecError] = {}
    by_codec: dict[int, Message | CodecError] = {}
    for name, p in PROFILES.items():
        key = id(p.codec)
        if key not in by_codec:
            try:
                by_codec[key] = p.codec.decode(body)
            except CodecError as e:
                by_codec[key] = e
        got = by_codec[key]
        if isinstance(got, Message):
            decoded[name] = got
        else:
            errors[name] = got
    if not decoded:
        raise errors[BASELINE]
    candidates = list(decoded)
    reasons: list[str] = []

    def narrow(keep: list[str], why: str) -> None:
        nonlocal candidates
        if keep and len(keep) < len(candidates):
            candidates = keep
            reasons.append(why)

    if BASELINE in errors:
        err = errors[BASELINE]
        reasons.append(f"the baseline cannot read field {err.field} ({err.expected}); {', '.join(candidates)} can")
    msg = decoded[BASELINE if BASELINE in decoded else candidates[0]]

    if 62 in msg and (msg.data(62) or b"").startswith(SM4_PIN_PREFIX):
        narrow([BASELINE], "field 62 carries an SM4 PIN block (SM016): an SM4 terminal speaks the baseline only")
    if 60 in msg:
        tail = len(msg.text(60)) - 11
        if tail >= 0 and tail not in _BASELINE_TAILS:
            narrow([n for n in candidates if tail in PROFILES[n].f60_private],
                   f"field 60 has {tail} digits after 60.3 (the baseline takes 0, 1, 2, 3 or 6)")  # fmt: skip
        elif tail >= 0:
            narrow([n for n in candidates if not PROFILES[n].f60_tail],
                   f"field 60 has {tail} digits after 60.3, a baseline shape (profiles with their own tail excluded)")  # fmt: skip
    for number in (3, 25):
        if number in msg:
            code = msg.text(number)
            own = [n for n in candidates if code in PROFILES[n].aliases.get(number, {})]
            narrow(own, f"field {number} = {code} is {', '.join(own)}'s code")
    mac = msg.data(64) if 64 in msg else None
    if mac is not None and len(mac) == 8:
        chars = frozenset(mac)
        if chars <= _DIGITS:  # an ASCII hex MAC without a letter: upper or lower case cannot be told
            families, why = {"upper", "lower"}, "field 64 is 8 ASCII digits (a CUP ECB MAC, case unknown)"
        elif chars <= _HEX_UPPER:
            families, why = {"upper"}, "field 64 is 8 upper-case ASCII hex characters (the CUP ECB MAC)"
        elif chars <= _HEX_LOWER:
            families, why = {"lower"}, "field 64 is 8 lower-case ASCII hex characters (the CUP ECB MAC in lower case)"
        else:
            families, why = {"cbc"}, "field 64 is 8 binary bytes (an X9.9 / X9.19 CBC MAC)"
        narrow([n for n in candidates if _mac_family(n) in families], why)
    chosen = candidates[0] if len(candidates) == 1 else (BASELINE if BASELINE in candidates else candidates[0])
    if len(candidates) == 1:
        reason = "; ".join(reasons)
    else:
        left = _what_is_left(candidates, msg)
        reason = f"ambiguous: {', '.join(candidates)} ({left})" + (f"; {'; '.join(reasons)}" if reasons else "")
    return decoded[chosen], Detection(PROFILES[chosen], reason, tuple(candidates))


def _what_is_left(candidates: list[str], msg: Message) -> str:
    pins = {PROFILES[n].pin_format for n in candidates}
    if len(pins) > 1 and 52 in msg:
        return "they differ in the PIN block format of field 52, which only the PIK shows"
    if 64 not in msg:
        return "no MAC and no field a profile changes: every one of them reads it the same"
    return "they read these fields alike"
