"""BER-TLV as used in field 55 (EMV data) and the e-signature receipt elements.

A :class:`TLV` is an immutable, ordered list of items that keeps the exact bytes it was read
from, so a decoded field re-encodes to the identical bytes even when the sender used long-form
lengths or tags we do not know. Tags are upper-case hex strings (``"9F26"``); multi-byte tags
follow the BER rule (low five bits all set → more tag bytes; bit 8 set → another byte follows).
A constructed tag (bit 6 of the first byte) holds a nested :class:`TLV` — except tags whose
first byte is ``FF``, CUP's private receipt elements, which are primitive (3.13).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Union

from posgate.iso8583.errors import CodecError

Value = Union[bytes, "TLV"]


# Tag strings by first byte (one-byte tags) and by first two bytes (two-byte tags): decoding
# field 55 builds a tag string per item, so these are looked up, not formatted.
_TAG1 = [f"{b:02X}" for b in range(256)]
_TAG2 = {(f << 8) | s: f"{f:02X}{s:02X}" for f in range(256) if f & 0x1F == 0x1F for s in range(0x80)}

# CUP's e-signature receipt elements FF00..FF70 (docs/dialect.md 3.13) have the constructed bit
# set in their first byte but carry plain values (GBK text, BCD dates): a first byte FF is
# primitive in this codec.
_PRIMITIVE_CONSTRUCTED = 0xFF


def _is_constructed(first: int) -> bool:
    return bool(first & 0x20) and first != _PRIMITIVE_CONSTRUCTED


def _read_tag(buf: bytes, p: int, path: str, base: int = 0) -> tuple[str, int, bool]:
    end = len(buf)
    if p >= end:
        raise CodecError(path, "a TLV tag", base + p)
    first = buf[p]
    q = p + 1
    if first & 0x1F == 0x1F:
        while True:
            if q >= end:
                raise CodecError(path, "the rest of a multi-byte TLV tag", base + q)
            b = buf[q]
            q += 1
            if not b & 0x80:
                break
    return buf[p:q].hex().upper(), q, _is_constructed(first)


def _read_len(buf: bytes, p: int, path: str, base: int = 0) -> tuple[int, int]:
    end = len(buf)
    if p >= end:
        raise CodecError(path, "a TLV length", base + p)
    b = buf[p]
    if b < 0x80:
        return b, p + 1
    n = b & 0x7F
    if n == 0 or n > 3:
        raise CodecError(path, "a BER length of 1 to 3 bytes", base + p)
    if p + 1 + n > end:
        raise CodecError(path, "the bytes of a long-form TLV length", base + p)
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
    def _trusted(cls, items: tuple[tuple[str, Value], ...], raw: bytes) -> TLV:
        t = cls.__new__(cls)
        object.__setattr__(t, "items", items)
        object.__setattr__(t, "raw", raw)
        return t

    @classmethod
    def decode(cls, buf: bytes, path: str = "55", base: int = 0) -> TLV:
        """Parse ``buf`` completely; errors name ``path.TAG`` and the absolute offset
        (``base`` is the offset of ``buf`` in the message body)."""
        shapes = _SHAPES.get(len(buf))
        if shapes is not None:
            whole = int.from_bytes(buf, "big")
            for mask, want, build in shapes:
                if whole & mask == want:  # the same tag and length bytes where a known shape has them
                    return cls._trusted(build(buf), bytes(buf))
        items = _decode_common(buf)
        if items is None:  # something unusual or wrong: the careful path parses it or says what
            items = _decode_careful(buf, path, base)
        else:
            _learn_shape(buf, items)
        return cls._trusted(items, bytes(buf))

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


def _decode_common(buf: bytes) -> tuple[tuple[str, Value], ...] | None:
    """The common case, fast: one- and two-byte tags, one-byte lengths. ``None`` for anything
    else (long-form lengths, longer tags, malformed data)."""
    items: list[tuple[str, Value]] = []
    append = items.append
    tag1, tag2 = _TAG1, _TAG2
    p, end = 0, len(buf)
    try:
        while p < end:
            first = buf[p]
            if first & 0x1F != 0x1F:
                tag = tag1[first]
                length = buf[p + 1]
                q = p + 2
            else:
                tag = tag2[(first << 8) | buf[p + 1]]  # KeyError: a third tag byte follows
                length = buf[p + 2]
                q = p + 3
            r = q + length
            if length & 0x80 or r > end:
                return None
            if first & 0x20 and first != _PRIMITIVE_CONSTRUCTED:
                inner = _decode_common(buf[q:r])
                if inner is None:
                    return None
                append((tag, TLV._trusted(inner, buf[q:r])))
            else:
                append((tag, buf[q:r]))
            p = r
    except (IndexError, KeyError):
        return None
    return tuple(items)


# -- shapes: the tag and length bytes of field 55 as a terminal sends it, compiled (issue 12)
#
# Why: a terminal sends the same tags with the same lengths in every request (its CDOL), only
# the values change, and decoding 20-odd items one by one in Python was two thirds of decoding
# a chip sale. A shape is the set of positions of the tag and length bytes of a value that the
# common path decoded, with those bytes, and a generated function that slices the values at
# their offsets. The parse is a function of those bytes only (where the next item starts, which
# tag, how long, whether constructed), so a value of the same length with the same bytes at the
# same positions parses identically: one AND and one compare of the value as an integer decide
# it. Only valid values teach a shape, and the table is bounded (garbage cannot grow it).
_SHAPES: dict[int, list[tuple[int, int, Any]]] = {}
_SHAPES_MAX = 256
_SHAPES_PER_LENGTH = 8
_shape_count = 0


def _learn_shape(buf: bytes, items: tuple[tuple[str, Value], ...]) -> None:
    global _shape_count
    if _shape_count >= _SHAPES_MAX or len(_SHAPES.get(len(buf), ())) >= _SHAPES_PER_LENGTH:
        return
    header: list[int] = []  # positions of tag and length bytes

    def expr(at: int, its: tuple[tuple[str, Value], ...]) -> tuple[str, int]:
        parts = []
        p = at
        for tag, value in its:
            n = len(tag) // 2 + 1  # the common path reads one- and two-byte tags, one-byte lengths
            header.extend(range(p, p + n))
            q = p + n
            if isinstance(value, TLV):
                inner, r = expr(q, value.items)
                parts.append(f"({tag!r}, T({inner}, b[{q}:{r}]))")
            else:
                r = q + len(value)
                parts.append(f"({tag!r}, b[{q}:{r}])")
            p = r
        return "(" + "".join(x + ", " for x in parts) + ")", p

    body, end = expr(0, items)
    if end != len(buf):  # cannot happen for what the common path accepted; never learn a doubt
        return
    mask = want = 0
    size = len(buf)
    for i in header:
        shift = (size - 1 - i) * 8
        mask |= 0xFF << shift
        want |= buf[i] << shift
    # The source holds tags (hex text) and offsets only, never a value.
    namespace: dict[str, Any] = {}
    exec(compile(f"def build(b):\n return {body}", "<posgate TLV shape>", "exec"), {"T": TLV._trusted}, namespace)  # noqa: S102
    _SHAPES.setdefault(size, []).append((mask, want, namespace["build"]))
    _shape_count += 1


def _decode_careful(buf: bytes, path: str, base: int) -> tuple[tuple[str, Value], ...]:
    items: list[tuple[str, Value]] = []
    p, end = 0, len(buf)
    while p < end:
        tag, q, constructed = _read_tag(buf, p, path, base)
        sub = f"{path}.{tag}"
        length, q = _read_len(buf, q, sub, base)
        if q + length > end:
            raise CodecError(sub, f"{length} value bytes, found {end - q}", base + q)
        value = buf[q : q + length]
        items.append((tag, TLV.decode(value, sub, base + q) if constructed else value))
        p = q + length
    return tuple(items)
