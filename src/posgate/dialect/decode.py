"""``posgate decode``: take hex as people paste it (spaces, line breaks, with or without the
length prefix, TPDU and header) and decode it with the dialect profile its bytes point to
(``posgate.dialect.detect``; the baseline when they leave a doubt), or with the one given.

A message no terminal profile reads but the host-to-host dialect does (``posgate.dialect.network``:
a secondary bitmap, field 128's MAC; bare or after its 2-byte length) is decoded with that
dialect, card data masked the same way; the MAC is shown, not verified (that needs the key)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from posgate.dialect.describe import describe_rows
from posgate.dialect.detect import detect
from posgate.dialect.profiles import PROFILES, Profile
from posgate.framing import HEADER_LEN, PREFIX_LEN, FramingError, Header, Tpdu
from posgate.iso8583 import CodecError, Message


class DecodeInputError(ValueError):
    pass


@dataclass
class Decoded:
    message: Message
    length: int | None
    tpdu: Tpdu | None
    header: Header | None
    profile: Profile = PROFILES["cup"]
    profile_reason: str = ""
    dialect: str = "cup"  # or "h2h": the host-to-host dialect (docs/upstream.md)

    def rows(self) -> list[dict[str, str]]:
        return h2h_rows(self.message) if self.dialect == "h2h" else describe_rows(self.message, self.profile)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mti": self.message.mti, "profile": self.profile.name, "profile_reason": self.profile_reason}
        if self.dialect == "h2h":
            out = {"mti": self.message.mti, "dialect": "host-to-host ISO 8583:1987"}
        if self.length is not None:
            out["length"] = self.length
        if self.tpdu:
            out["tpdu"] = str(self.tpdu)
            out["tpdu_variant"] = self.tpdu.variant()
        if self.header:
            out["header"] = {"raw": str(self.header), "requirement": self.header.requirement, "variant": self.header.variant()}
        out["fields"] = self.rows()
        return out

    def as_text(self) -> str:
        lines = []
        if self.length is not None:
            lines.append(f"length  {self.length}")
        if self.tpdu:
            lines.append(f"TPDU    {self.tpdu}  (destination {self.tpdu.destination}, source {self.tpdu.source};"
                         f" variant: {self.tpdu.variant()})")  # fmt: skip
        if self.header:
            lines.append(f"header  {self.header}  (processing requirement {self.header.requirement};"
                         f" variant: {self.header.variant()})")  # fmt: skip
        if self.dialect == "h2h":
            lines.append("dialect host-to-host ISO 8583:1987 (docs/upstream.md)")
        else:
            lines.append(f"profile {self.profile.name}  ({self.profile_reason})")
        rows = self.rows()
        width = max(len(r["path"]) for r in rows)
        lines += [f"{r['path']:>{width}}  {r['name']:<62} {r['value']}" for r in rows]
        return "\n".join(lines)


def decode_any(text: str, profile: Profile | None = None) -> Decoded:
    """Decode with ``profile`` (a terminal's dialect profile), else with the profile the bytes
    point to (the baseline where they leave a doubt, said so in ``profile_reason``)."""
    cleaned = re.sub(r"\s+", "", text)
    if not cleaned:
        raise DecodeInputError("no hex given")
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise DecodeInputError("not hex: use 0-9 and A-F, an even number of digits") from None

    def body(b: bytes) -> tuple[Message, Profile, str]:
        if profile is not None:
            return profile.codec.decode(b), profile, "given with --profile"
        msg, found = detect(b)
        return msg, found.profile, found.reason

    attempts: list[tuple[str, str]] = []
    # Framed: 2-byte length that matches, then TPDU (starts 0x60) and header.
    if len(raw) > 2 + PREFIX_LEN and raw[2] == 0x60:
        declared = int.from_bytes(raw[:2], "big")
        if declared != len(raw) - 2:
            attempts.append(("framed", f"the length prefix says {declared} bytes but {len(raw) - 2} follow"))
        else:
            try:
                tpdu, header = Tpdu.parse(raw[2:7]), Header.parse(raw[7:13])
                return Decoded(*_with(body(raw[13:]), declared, tpdu, header))
            except (CodecError, FramingError) as e:
                attempts.append(("framed", str(e)))
    if len(raw) > PREFIX_LEN and raw[0] == 0x60:
        try:
            tpdu, header = Tpdu.parse(raw[:5]), Header.parse(raw[5 : 5 + HEADER_LEN])
            return Decoded(*_with(body(raw[PREFIX_LEN:]), None, tpdu, header))
        except (CodecError, FramingError) as e:
            attempts.append(("TPDU + header", str(e)))
    try:
        return Decoded(*_with(body(raw), None, None, None))
    except CodecError as e:
        attempts.append(("bare body", str(e)))
    if profile is None:
        from posgate.dialect import network as h2h

        framed = len(raw) > 12 and int.from_bytes(raw[:2], "big") == len(raw) - 2
        for how, b in (("host-to-host", raw), *((("host-to-host framed", raw[2:]),) if framed else ())):
            try:
                return Decoded(h2h.decode(b), len(b) if how.endswith("framed") else None, None, None,
                               dialect="h2h")  # fmt: skip
            except CodecError as e:
                attempts.append((how, str(e)))
    raise DecodeInputError("; ".join(f"as {how}: {err}" for how, err in attempts))


def _with(
    got: tuple[Message, Profile, str], length: int | None, tpdu: Tpdu | None, header: Header | None
) -> tuple[Message, int | None, Tpdu | None, Header | None, Profile, str]:
    msg, prof, reason = got
    return msg, length, tpdu, header, prof, reason


def h2h_rows(msg: Message) -> list[dict[str, str]]:
    """The rows of a host-to-host message: field names of ``posgate.dialect.network``, card data masked."""
    from posgate.dialect import network as h2h
    from posgate.domain.masking import mask_pan
    from posgate.iso8583 import TLV
    from posgate.iso8583.spec import Sensitivity

    rows = [{"path": "mti", "name": "message type", "value": msg.mti}]
    for number in msg:
        spec = h2h.FIELDS[number]
        value = msg[number]
        if spec.sensitivity is Sensitivity.PAN:
            shown = mask_pan(str(value)) if number == 2 else "****"
        elif spec.sensitivity is Sensitivity.PIN:
            shown = "[PIN block, 8 bytes]"
        elif number == 48 and msg.mti in ("0800", "0810") and msg.text(70) in (h2h.SIGN_ON, h2h.KEY_CHANGE):
            shown = f"[{len(str(value))} characters: keys under the zone master key, hidden]"
        elif isinstance(value, TLV):
            shown = value.raw.hex().upper()
        elif isinstance(value, bytes):
            shown = value.hex().upper()
        else:
            shown = str(value)
        rows.append({"path": str(number), "name": f"{spec.name} ({spec.zh}) {spec.notation}", "value": shown})
    return rows
