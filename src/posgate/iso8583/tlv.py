"""BER-TLV as used in field 55 (EMV data) and the e-signature receipt elements.

A :class:`TLV` is an immutable, ordered list of items that keeps the exact bytes it was read
from, so a decoded field re-encodes to the identical bytes even when the sender used long-form
lengths or tags we do not know. Tags are upper-case hex strings (``"9F26"``); multi-byte tags
follow the BER rule (low five bits all set → more tag bytes; bit 8 set → another byte follows).
A constructed tag (bit 6 of the first byte) holds a nested :class:`TLV`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Union

from posgate.iso8583.errors import CodecError

Value = Union[bytes, "TLV"]


def _read_tag(buf: bytes, p: int, path: str) -> tuple[str, int, bool]:
    end = len(buf)
    if p >= end:
        raise CodecError(path, "a TLV tag", p)
    first = buf[p]
    q = p + 1
    if first & 0x1F == 0x1F:
        while True:
            if q >= end:
                raise CodecError(path, "the rest of a multi-byte TLV tag", q)
            b = buf[q]
            q += 1
            if not b & 0x80:
                break
    return buf[p:q].hex().upper(), q, bool(first & 0x20)


def _read_len(buf: bytes, p: int, path: str) -> tuple[int, int]:
    end = len(buf)
    if p >= end:
        raise CodecError(path, "a TLV length", p)
    b = buf[p]
    if b < 0x80:
        return b, p + 1
    n = b & 0x7F
    if n == 0 or n > 3:
        raise CodecError(path, "a BER length of 1 to 3 bytes", p)
    if p + 1 + n > end:
        raise CodecError(path, "the bytes of a long-form TLV length", p)
    return int.from_bytes(buf[p + 1 : p + 1 + n], "big"), p + 1 + n


def _len_bytes(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


class TLV:
    """An ordered BER-TLV list; ``raw`` is its exact wire form."""

    __slots__ = ("items", "raw")

    items: tuple[tuple[str, Value], ...]
    raw: bytes

    def __init__(self, items: Iterable[tuple[str, Value | str]] = (), *, raw: bytes | None = None) -> None:
        built: list[tuple[str, Value]] = []
        for tag, value in items:
            if isinstance(value, str):
                value = bytes.fromhex(value)
            built.append((tag.upper(), value))
        object.__setattr__(self, "items", tuple(built))
        if raw is None:
            out = bytearray()
            for tag, value in built:
                body = value.raw if isinstance(value, TLV) else value
                out += bytes.fromhex(tag) + _len_bytes(len(body)) + body
            raw = bytes(out)
        object.__setattr__(self, "raw", raw)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TLV is immutable")

    @classmethod
    def decode(cls, buf: bytes, path: str = "55", base: int = 0) -> TLV:
        """Parse ``buf`` completely; errors name ``path.TAG`` and the absolute offset."""
        items: list[tuple[str, Value]] = []
        p, end = 0, len(buf)
        while p < end:
            tag, q, constructed = _read_tag(buf, p, path)
            sub = f"{path}.{tag}"
            length, q = _read_len(buf, q, sub)
            if q + length > end:
                raise CodecError(sub, f"{length} value bytes, found {end - q}", base + q)
            value = buf[q : q + length]
            items.append((tag, cls.decode(value, sub, base + q) if constructed else value))
            p = q + length
        return cls(items, raw=bytes(buf))

    def get(self, tag: str, default: Value | None = None) -> Value | None:
        tag = tag.upper()
        for t, v in self.items:
            if t == tag:
                return v
        return default

    def __getitem__(self, tag: str) -> Value:
        v = self.get(tag)
        if v is None:
            raise KeyError(tag)
        return v

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, str) and self.get(tag) is not None

    def __iter__(self) -> Iterator[tuple[str, Value]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TLV) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return "TLV(" + ", ".join(t for t, _ in self.items) + ")"

    def without(self, *tags: str) -> TLV:
        drop = {t.upper() for t in tags}
        return TLV([(t, v) for t, v in self.items if t not in drop])

    def walk(self, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        """Yield (path, primitive value) for every leaf, depth first."""
        for tag, value in self.items:
            if isinstance(value, TLV):
                yield from value.walk(prefix + tag + ".")
            else:
                yield prefix + tag, value
