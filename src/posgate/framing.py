"""Framing on TCP, sans-IO (spec 1.1, D1): 2-byte big-endian length, 5-byte TPDU, 6-byte header, body.

:class:`FrameReader` takes whatever bytes arrive (all at once, byte by byte, several frames and
a half) and hands back whole :class:`Frame` objects; it owns no socket and no clock. A length
that cannot hold a TPDU and a header, or exceeds the configured maximum, is a
:class:`FramingError` — the connection must then be closed, since the stream has lost sync;
the whole frames read before it are still handed back (and answered) first.
:func:`encode_frame` is the inverse. :class:`Tpdu` and :class:`Header` give the two prefixes
names (the reply swaps the TPDU addresses; the header's 6th digit is the processing requirement).
"""

from __future__ import annotations

from dataclasses import dataclass

TPDU_LEN = 5
HEADER_LEN = 6
PREFIX_LEN = TPDU_LEN + HEADER_LEN
DEFAULT_MAX_FRAME = 4096  # a CUP message with a 999-byte signature stays under 2 KiB


class FramingError(ValueError):
    """The byte stream is not a sequence of CUP frames. ``rest``: the bytes from the bad
    length prefix on (for a relay that passes them through untouched)."""

    rest: bytes = b""


@dataclass(frozen=True, slots=True)
class Tpdu:
    """``60`` + destination address (4 digits) + source address (4 digits).

    Liberal in what it reads: any 5 bytes parse (as upper-case hex), since the host only swaps
    the two addresses and never interprets them; :meth:`variant` says how the TPDU departs
    from the BCD form of 1.1, for ``posgate decode`` and the logs."""

    id: str = "60"
    destination: str = "0003"
    source: str = "0000"

    @classmethod
    def parse(cls, raw: bytes) -> Tpdu:
        if len(raw) != TPDU_LEN:
            raise FramingError("TPDU: expected 5 bytes")
        s = raw.hex().upper()
        return cls(s[0:2], s[2:6], s[6:10])

    @classmethod
    def from_hex(cls, s: str) -> Tpdu:
        try:
            return cls.parse(bytes.fromhex(s))
        except ValueError:
            raise FramingError("TPDU: expected 10 hex digits such as 6000030000") from None

    def encode(self) -> bytes:
        return bytes.fromhex(self.id + self.destination + self.source)

    def swapped(self) -> Tpdu:
        """The reply's TPDU: destination and source exchanged (D1)."""
        return Tpdu(self.id, self.source, self.destination)

    def variant(self) -> str:
        """``"BCD"`` for the form of 1.1, else what differs (e.g. ``"id 68, hex destination"``)."""
        notes = [f"id {self.id}"] if self.id != "60" else []
        notes += [f"hex {name}" for name, v in (("destination", self.destination), ("source", self.source))
                  if not v.isdigit()]  # fmt: skip
        return ", ".join(notes) or "BCD"

    def __str__(self) -> str:
        return self.id + self.destination + self.source


# Processing requirements a host may put in the 6th header digit of a reply (1.3, D2).
REQ_NONE, REQ_PARAMETERS, REQ_STATUS, REQ_SIGN_ON = "0", "1", "2", "3"


@dataclass(frozen=True, slots=True)
class Header:
    """12 digits: application category (2), spec version (2), terminal status (1),
    processing requirement (1), software sub-version (6).

    Liberal in what it reads: any 6 bytes parse (as upper-case hex). Real traffic carries hex
    digits in the vendor's sub-version (``60310031110E``, docs/field-dialects.md); the host
    echoes the header as received, changing only the processing-requirement digit of its reply
    (D2). :meth:`variant` says how a header departs from the all-BCD form of 1.3."""

    category: str = "60"
    version: str = "31"
    status: str = "0"
    requirement: str = "0"
    sub_version: str = "000000"

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        if len(raw) != HEADER_LEN:
            raise FramingError("header: expected 6 bytes")
        s = raw.hex().upper()
        return cls(s[0:2], s[2:4], s[4], s[5], s[6:12])

    @classmethod
    def from_hex(cls, s: str) -> Header:
        try:
            return cls.parse(bytes.fromhex(s))
        except ValueError:
            raise FramingError("header: expected 12 hex digits such as 603100000000") from None

    def encode(self) -> bytes:
        return bytes.fromhex(self.category + self.version + self.status + self.requirement + self.sub_version)

    def with_requirement(self, requirement: str) -> Header:
        return Header(self.category, self.version, self.status, requirement, self.sub_version)

    def variant(self) -> str:
        """``"BCD"`` for the all-BCD form of 1.3, else which parts carry hex digits
        (e.g. ``"hex sub-version"``)."""
        parts = (("category", self.category), ("version", self.version), ("status", self.status),
                 ("requirement", self.requirement), ("sub-version", self.sub_version))  # fmt: skip
        return ", ".join(f"hex {name}" for name, v in parts if not v.isdigit()) or "BCD"

    def __str__(self) -> str:
        return self.category + self.version + self.status + self.requirement + self.sub_version


@dataclass(frozen=True, slots=True)
class Frame:
    tpdu: bytes
    header: bytes
    body: bytes

    @property
    def requirement(self) -> str:
        """The processing-requirement digit of the header (a reply's instruction, D2)."""
        return f"{self.header[2] & 0x0F:X}" if len(self.header) == HEADER_LEN else "0"


def encode_frame(tpdu: bytes, header: bytes, body: bytes, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    if len(tpdu) != TPDU_LEN or len(header) != HEADER_LEN:
        raise FramingError("frame: TPDU must be 5 bytes and header 6 bytes")
    size = PREFIX_LEN + len(body)
    if size > max_size:
        raise FramingError(f"frame: {size} bytes exceeds the maximum of {max_size}")
    return size.to_bytes(2, "big") + tpdu + header + body


class FrameReader:
    """Feed bytes, get frames. Keeps at most one partial frame buffered.

    Frames before a bad length prefix are never thrown away: when one :meth:`feed` holds whole
    frames followed by stray bytes (a length that cannot be right), it returns those frames and
    keeps the error in :attr:`error`; the caller answers them, then closes (the stream has lost
    sync, so nothing after the stray bytes can be trusted). The next :meth:`feed` raises it.
    When the very first length of a feed is bad, :meth:`feed` raises at once, as before.
    """

    __slots__ = ("_buf", "max_size", "error")

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_size = max_size
        self.error: FramingError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return every frame now complete (possibly none)."""
        if self.error is not None:
            raise self.error
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        p, end = 0, len(buf)
        while end - p >= 2:
            size = (buf[p] << 8) | buf[p + 1]
            problem = None
            if size < PREFIX_LEN + 10:  # TPDU + header + MTI + bitmap at the very least
                problem = f"frame length {size} is too short for a TPDU, a header and a message"
            elif size > self.max_size:
                problem = f"frame length {size} exceeds the maximum of {self.max_size}"
            if problem is not None:
                if frames:
                    problem += f" (stray bytes after {len(frames)} whole frame{'s' if len(frames) > 1 else ''})"
                self.error = FramingError(problem)
                self.error.rest = bytes(buf[p:])
                del buf[:]
                if not frames:
                    raise self.error
                return frames
            if end - p - 2 < size:
                break
            start = p + 2
            frames.append(
                Frame(bytes(buf[start : start + 5]), bytes(buf[start + 5 : start + 11]), bytes(buf[start + 11 : start + size]))
            )
            p = start + size
        if p:
            del buf[:p]
        return frames

    @property
    def pending(self) -> int:
        """Bytes buffered toward an incomplete frame (for slow-drip detection)."""
        return len(self._buf)
