"""The immutable message: an MTI and a mapping of field number → value.

Values are ``str`` for ``n``/``z``/``an``/``ans`` fields (digits keep their leading zeros; ``z``
uses ``=`` as the separator, and upper-case A-C, E-F for the ciphertext nibbles of an encrypted
track), ``bytes`` for ``b`` fields and :class:`~posgate.iso8583.tlv.TLV` for TLV fields. A
message decoded from the wire also keeps ``raw``, the exact body bytes, so the MAC can be
checked over the bytes as sent instead of re-encoding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from posgate.iso8583.tlv import TLV

FieldValue = str | bytes | TLV


class Message(Mapping[int, FieldValue]):
    """An ISO 8583 message. Immutable: derive new ones with :meth:`replace`."""

    __slots__ = ("mti", "_fields", "raw")

    mti: str
    _fields: dict[int, FieldValue]
    raw: bytes | None

    def __init__(self, mti: str, fields: Mapping[int, FieldValue] | None = None, *, raw: bytes | None = None) -> None:
        object.__setattr__(self, "mti", mti)
        object.__setattr__(self, "_fields", dict(fields) if fields else {})
        object.__setattr__(self, "raw", raw)

    @classmethod
    def _trusted(cls, mti: str, fields: dict[int, FieldValue], raw: bytes | None) -> Message:
        # The decoder's fast path: the dict is fresh and owned by the new message.
        m = cls.__new__(cls)
        _set_mti(m, mti)
        _set_fields(m, fields)
        _set_raw(m, raw)
        return m

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Message is immutable; use replace()")

    def __getitem__(self, key: int) -> FieldValue:
        return self._fields[key]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.mti == other.mti and self._fields == other._fields

    def __hash__(self) -> int:
        return hash((self.mti, tuple(sorted(self._fields.items(), key=lambda kv: kv[0]))))

    def __repr__(self) -> str:
        # Field numbers only: a repr can end up in a log, and values may be card data.
        return f"Message({self.mti}, fields={sorted(self._fields)})"

    def text(self, key: int, default: str = "") -> str:
        """The value of a text field, or ``default``."""
        v = self._fields.get(key)
        return v if isinstance(v, str) else default

    def data(self, key: int) -> bytes | None:
        """The value of a binary field (a TLV as its raw bytes), or None."""
        v = self._fields.get(key)
        if isinstance(v, TLV):
            return v.raw
        return v if isinstance(v, bytes) else None

    def replace(self, mti: str | None = None, drop: tuple[int, ...] = (), **changes: FieldValue) -> Message:
        """A copy with ``mti`` replaced, fields in ``drop`` removed and ``f<N>=value`` set."""
        fields = dict(self._fields)
        for k in drop:
            fields.pop(k, None)
        for name, value in changes.items():
            fields[int(name.lstrip("f"))] = value
        return Message(mti or self.mti, fields)

    def with_fields(self, fields: Mapping[int, FieldValue | None], mti: str | None = None) -> Message:
        """A copy with ``fields`` set (a ``None`` value removes the field)."""
        new = dict(self._fields)
        for k, v in fields.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        return Message(mti or self.mti, new)

    def mac_block(self) -> bytes:
        """The MAC block as received: the body from the MTI up to (excluding) field 64, or
        field 128 in a dialect with a secondary bitmap (the MAC is the last field either way)."""
        if self.raw is None:
            raise ValueError("mac_block() needs a message decoded from the wire")
        return self.raw[:-8] if (64 in self._fields or 128 in self._fields) else self.raw


# The slots' own setters: the decoder builds a Message per message, and these skip both the
# immutability guard and the attribute lookup of ``object.__setattr__``.
_set_mti = Message.__dict__["mti"].__set__
_set_fields = Message.__dict__["_fields"].__set__
_set_raw = Message.__dict__["raw"].__set__
