"""The codec: a dialect table compiled once into encode and decode functions.

Why our own codec: a host spends most of a transaction in encode/decode when it uses a general
library; compiling the table into straight-line code that slices bytes and calls
``bytes.hex``/``bytes.fromhex`` does the same work several times faster
(``python -m posgate.bench.codec`` measures it against pyiso8583, which stays in the tests as
an independent oracle).

Theory of operation — two paths that must agree:

* The **reference path**: :func:`compile_field` turns each field spec into a decoder
  ``dec(buf, pos) -> (value, new_pos)`` and an encoder ``enc(value) -> bytes``. They check
  everything and raise a :class:`CodecError` naming the field and byte offset.
* The **fast path**: for each bitmap seen (decode) and each set of field numbers (encode) the
  codec generates one Python function for the whole message: consecutive fixed BCD fields
  become a single ``hex()``/``fromhex()`` and one digit check, consecutive fixed text fields a
  single ASCII ``decode``/``encode``, offsets are constants until the first variable field.
  It performs the same checks in bulk and, at the first doubt, returns ``None``; the codec then
  runs the reference path, which raises the precise error (or, for a valid but unusual value
  such as a short fixed text field to pad, produces the result). So errors always come from
  the reference path, and the fast path only ever accepts what the reference path accepts —
  ``tests/codec/test_fast_path.py`` holds it to that on generated and mutilated messages.
  A function is generated for a bitmap / field set only after the reference path has handled a
  valid message of that shape, and only while the bounded cache has room (terminals send few
  distinct shapes; garbage must not make the codec compile code per message).

``decode(body)`` reads MTI (2 BCD bytes), the primary bitmap (8 bytes) and the fields; anything
that is not exactly a message (trailing bytes, a secondary bitmap, an undefined field, a
non-digit in a BCD field, a length over the maximum) is an error. ``encode(msg, mac=None)``
writes MTI, bitmap and fields; with ``mac`` (a function of the MAC block) it sets the MAC
field's bit — 64, or 128 in a dialect with a secondary bitmap (ISO 8583:1987: the MAC is the
last field of the last bitmap) — encodes up to the field before it and appends ``mac(mab)`` —
no double encoding. A value never appears in
an error: errors end up in logs, and logs must not hold card data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from posgate.iso8583.errors import CodecError
from posgate.iso8583.message import FieldValue, Message
from posgate.iso8583.spec import FieldSpec, Kind, Prefix
from posgate.iso8583.tlv import TLV

Decoder = Callable[[bytes, int], tuple[Any, int]]
Encoder = Callable[[Any], bytes]
FastDecoder = Callable[[bytes], "dict[int, FieldValue] | None"]
FastEncoder = Callable[["dict[int, FieldValue]", bytes, bytes], "bytes | None"]

# BCD byte → its two-digit value, or -1 when a nibble is not a decimal digit.
_BCD = [((b >> 4) * 10 + (b & 15)) if (b >> 4) < 10 and (b & 15) < 10 else -1 for b in range(256)]
_BCD_BYTES = [bytes.fromhex(f"{i:02d}") for i in range(100)]
_LL = _BCD_BYTES
_LLL = [bytes.fromhex(f"{i:04d}") for i in range(1000)]
# Track (z) values: digits and the separator ``=`` (nibble D) — and, in a track encrypted with
# the TDK (53.3 = 1, spec 6.3), the other hex nibbles of the ciphertext, written A, B, C, E, F
# (a D nibble of the ciphertext reads as ``=``, as posgate.crypto.encrypt_track writes it).
_TRACK = frozenset("0123456789=ABCEF")
# The pad nibble of an odd number of digits, as ``bytes.hex()`` writes it. Liberal in what we
# read: the CUP sources pad with 0 (1.5), but real terminals also pad with F (a captured 0200
# whose track 2 ends in an F nibble and whose MAC verifies: docs/field-dialects.md). The pad
# carries no digit, so accepting either changes no value; the MAC is checked over the bytes as
# received (``Message.raw``). We always write 0.
PAD_NIBBLES = frozenset("0f")


def _digits_ok(s: str) -> bool:
    """ASCII digits only (the empty string included: a variable field may be empty)."""
    return s.isascii() and (s.isdigit() or not s)


def _track_ok(s: str) -> bool:
    return _TRACK.issuperset(s)


def _length_codec(spec: FieldSpec) -> tuple[Callable[[bytes, int, str], tuple[int, int]], Callable[[int], bytes]]:
    max_len = spec.max_len
    bcd = _BCD

    if spec.prefix is Prefix.LL:

        def read_ll(buf: bytes, p: int, path: str) -> tuple[int, int]:
            if p >= len(buf):
                raise CodecError(path, "a 1-byte BCD length (LL)", p)
            n = bcd[buf[p]]
            if n < 0 or n > max_len:
                raise CodecError(path, f"an LL length of 0..{max_len} in BCD", p)
            return n, p + 1

        return read_ll, _LL.__getitem__

    def read_lll(buf: bytes, p: int, path: str) -> tuple[int, int]:
        if p + 2 > len(buf):
            raise CodecError(path, "a 2-byte BCD length (LLL)", p)
        hi, lo = buf[p], bcd[buf[p + 1]]
        if hi > 9 or lo < 0:
            raise CodecError(path, "a 2-byte BCD length 0NNN (LLL)", p)
        n = hi * 100 + lo
        if n > max_len:
            raise CodecError(path, f"an LLL length of at most {max_len}", p)
        return n, p + 2

    return read_lll, _LLL.__getitem__


def compile_field(spec: FieldSpec) -> tuple[Decoder, Encoder]:
    """Build the reference (decoder, encoder) pair for one field."""
    path = str(spec.number)
    kind, max_len = spec.kind, spec.max_len

    if kind in (Kind.N, Kind.Z):
        what = "BCD digits" if kind is Kind.N else "track nibbles"
        left = spec.left
        track = kind is Kind.Z
        digits_ok = _track_ok if track else _digits_ok

        if not spec.variable:
            nbytes = (max_len + 1) // 2
            odd = max_len % 2 == 1

            def dec_fixed(buf: bytes, p: int) -> tuple[str, int]:
                q = p + nbytes
                chunk = buf[p:q]
                if len(chunk) != nbytes:
                    raise CodecError(path, f"{nbytes} bytes of {what} (n{max_len})", p)
                s = chunk.hex()
                if odd:
                    if left:
                        if s[-1] not in PAD_NIBBLES:
                            raise CodecError(path, "a 0 or F pad nibble after left-justified digits", p)
                        s = s[:-1]
                    else:
                        if s[0] not in PAD_NIBBLES:
                            raise CodecError(path, "a 0 or F pad nibble before right-justified digits", p)
                        s = s[1:]
                if not s.isdigit():
                    raise CodecError(path, f"{max_len} {what}", p)
                return s, q

            def enc_fixed(v: str) -> bytes:
                if not isinstance(v, str) or len(v) != max_len or not v.isascii() or not v.isdigit():
                    raise CodecError(path, f"exactly {max_len} digits (n{max_len})")
                if odd:
                    v = v + "0" if left else "0" + v
                return bytes.fromhex(v)

            return dec_fixed, enc_fixed

        read_len, write_len = _length_codec(spec)

        def dec_var(buf: bytes, p: int) -> tuple[str, int]:
            n, p = read_len(buf, p, path)
            nb = (n + 1) >> 1
            q = p + nb
            chunk = buf[p:q]
            if len(chunk) != nb:
                raise CodecError(path, f"{nb} bytes of {what}, found {len(chunk)}", p)
            s = chunk.hex()
            if n & 1:
                if left:
                    pad, s = s[-1], s[:-1]
                else:
                    pad, s = s[0], s[1:]
                if pad not in PAD_NIBBLES:
                    raise CodecError(path, "a 0 or F pad nibble", p)
            if track:
                s = s.upper().replace("D", "=")
            if not digits_ok(s):
                raise CodecError(path, what, p)
            return s, q

        def enc_var(v: str) -> bytes:
            if not isinstance(v, str) or len(v) > max_len or not digits_ok(v):
                raise CodecError(path, f"at most {max_len} {'digits' if not track else 'track characters (0-9, =, A-C, E-F)'}")
            n = len(v)
            if track:
                v = v.replace("=", "D")
            if n & 1:
                v = v + "0" if left else "0" + v
            return write_len(n) + bytes.fromhex(v)

        return dec_var, enc_var

    if kind in (Kind.AN, Kind.ANS):
        if not spec.variable:

            def dec_text(buf: bytes, p: int) -> tuple[str, int]:
                q = p + max_len
                chunk = buf[p:q]
                if len(chunk) != max_len:
                    raise CodecError(path, f"{max_len} ASCII characters", p)
                try:
                    return chunk.decode("ascii"), q
                except UnicodeDecodeError:
                    raise CodecError(path, "ASCII characters", p) from None

            def enc_text(v: str) -> bytes:
                if not isinstance(v, str) or len(v) > max_len or not v.isascii():
                    raise CodecError(path, f"at most {max_len} ASCII characters")
                return v.encode("ascii").ljust(max_len, b" ")

            return dec_text, enc_text

        read_len, write_len = _length_codec(spec)

        def dec_vtext(buf: bytes, p: int) -> tuple[str, int]:
            n, p = read_len(buf, p, path)
            q = p + n
            chunk = buf[p:q]
            if len(chunk) != n:
                raise CodecError(path, f"{n} ASCII characters, found {len(chunk)}", p)
            try:
                return chunk.decode("ascii"), q
            except UnicodeDecodeError:
                raise CodecError(path, "ASCII characters", p) from None

        def enc_vtext(v: str) -> bytes:
            if not isinstance(v, str) or len(v) > max_len or not v.isascii():
                raise CodecError(path, f"at most {max_len} ASCII characters")
            return write_len(len(v)) + v.encode("ascii")

        return dec_vtext, enc_vtext

    # Binary.
    if not spec.variable:

        def dec_bin(buf: bytes, p: int) -> tuple[bytes, int]:
            q = p + max_len
            chunk = buf[p:q]
            if len(chunk) != max_len:
                raise CodecError(path, f"{max_len} bytes", p)
            return chunk, q

        def enc_bin(v: bytes) -> bytes:
            if not isinstance(v, bytes) or len(v) != max_len:
                raise CodecError(path, f"exactly {max_len} bytes")
            return v

        return dec_bin, enc_bin

    read_len, write_len = _length_codec(spec)
    is_tlv = spec.tlv

    def dec_vbin(buf: bytes, p: int) -> tuple[bytes | TLV, int]:
        n, p = read_len(buf, p, path)
        q = p + n
        chunk = buf[p:q]
        if len(chunk) != n:
            raise CodecError(path, f"{n} bytes, found {len(chunk)}", p)
        if is_tlv:
            return TLV.decode(chunk, path, p), q
        return chunk, q

    def enc_vbin(v: bytes | TLV) -> bytes:
        if is_tlv and isinstance(v, TLV):
            v = v.raw
        if not isinstance(v, bytes) or len(v) > max_len:
            raise CodecError(path, f"at most {max_len} bytes")
        return write_len(len(v)) + v

    return dec_vbin, enc_vbin


# ---------------------------------------------------------------- the fast path: generated code
# Names the generated functions see (passed as their globals).
_GEN_GLOBALS: dict[str, Any] = {
    "BCD": _BCD,
    "LL": _LL,
    "LLL": _LLL,
    "TLV": TLV,
    "tlv_decode": TLV.decode,
    "fromhex": bytes.fromhex,
    "track_ok": _track_ok,
}


def _run_kind(spec: FieldSpec) -> str:
    if spec.variable:
        return ""
    return "n" if spec.kind is Kind.N else "t" if spec.kind in (Kind.AN, Kind.ANS) else ""


def _runs(specs: list[FieldSpec]) -> list[list[FieldSpec]]:
    """Group consecutive fixed BCD fields and consecutive fixed text fields; others stand alone."""
    runs: list[list[FieldSpec]] = []
    for spec in specs:
        kind = _run_kind(spec)
        if kind and runs and _run_kind(runs[-1][-1]) == kind:
            runs[-1].append(spec)
        else:
            runs.append([spec])
    return runs


def _build(name: str, lines: list[str]) -> Any:
    namespace: dict[str, Any] = {}
    # The source is generated from the dialect table only (field numbers and lengths), never from input.
    exec(compile("\n".join(lines), f"<posgate codec: {name}>", "exec"), dict(_GEN_GLOBALS), namespace)  # noqa: S102
    return namespace[name]


def _gen_decoder(specs: list[FieldSpec]) -> FastDecoder:
    out = ["def decode(b):", " try:"]
    emit = out.append
    dyn = False  # False: the position is the constant ``off``; True: it is ``p + off``
    off = 10

    def at(k: int = 0) -> str:
        return f"p + {off + k}" if dyn else str(off + k)

    for run in _runs(specs):
        first = run[0]
        if not first.variable and first.kind is Kind.N:
            nbytes = sum((s.max_len + 1) // 2 for s in run)
            emit(f"  h = b[{at()}:{at(nbytes)}].hex()")
            checks = []
            nib = 0
            for s in run:
                width = (s.max_len + 1) // 2 * 2
                start = nib
                if s.max_len % 2:
                    pad = nib + s.max_len if s.left else nib
                    checks.append(f'h[{pad}] not in "0f"')
                    start = nib if s.left else nib + 1
                emit(f"  v{s.number} = h[{start}:{start + s.max_len}]")
                nib += width
            # All digits (then every pad is 0), or the digits without the pads (an F pad, PAD_NIBBLES).
            digits = "not h.isdigit()"
            if checks:
                digits = f"(not h.isdigit() and not ({' + '.join(f'v{s.number}' for s in run)}).isdigit())"
            emit(f"  if {' or '.join([*checks, digits])}: return None")
            off += nbytes
        elif not first.variable and first.kind in (Kind.AN, Kind.ANS):
            total = sum(s.max_len for s in run)
            emit(f'  t = b[{at()}:{at(total)}].decode("ascii")')
            k = 0
            for s in run:
                emit(f"  v{s.number} = t[{k}:{k + s.max_len}]")
                k += s.max_len
            off += total
        elif not first.variable:  # fixed binary (a dialect with fixed z fields is left to the reference path)
            if first.kind is not Kind.B:
                raise ValueError("fixed z fields are not supported by the fast path")
            emit(f"  v{first.number} = b[{at()}:{at(first.max_len)}]")
            off += first.max_len
        else:
            s, n = first, first.number
            if s.prefix is Prefix.LL:
                emit(f"  n = BCD[b[{at()}]]")
                emit(f"  if n < 0 or n > {s.max_len}: return None")
                emit(f"  s = {at(1)}")
            else:
                emit(f"  n = b[{at()}]")
                emit(f"  lo = BCD[b[{at(1)}]]")
                emit("  if n > 9 or lo < 0: return None")
                emit("  n = n * 100 + lo")
                if s.max_len < 999:
                    emit(f"  if n > {s.max_len}: return None")
                emit(f"  s = {at(2)}")
            if s.kind in (Kind.N, Kind.Z):
                emit("  p = s + ((n + 1) >> 1)")
                emit("  h = b[s:p].hex()")
                emit("  if n & 1:")
                if s.left:
                    emit('   if h[-1] not in "0f": return None')
                    emit("   h = h[:-1]")
                else:
                    emit('   if h[0] not in "0f": return None')
                    emit("   h = h[1:]")
                if s.kind is Kind.N:
                    emit("  if h and not h.isdigit(): return None")
                    emit(f"  v{n} = h")
                else:  # every nibble is a track character (D is the separator)
                    emit(f'  v{n} = h.upper().replace("D", "=")')
            elif s.kind in (Kind.AN, Kind.ANS):
                emit("  p = s + n")
                emit(f'  v{n} = b[s:p].decode("ascii")')
            else:
                emit("  p = s + n")
                emit(f"  v{n} = b[s:p]")
                if s.tlv:
                    emit("  if p > len(b): return None")
                    emit(f'  v{n} = tlv_decode(v{n}, "{n}", s)')
            dyn, off = True, 0
    emit(f"  if {at()} != len(b): return None")
    emit("  return {" + ", ".join(f"{s.number}: v{s.number}" for s in specs) + "}")
    emit(" except (IndexError, ValueError):")  # ValueError: UnicodeDecodeError, CodecError (TLV)
    emit("  return None")
    return _build("decode", out)


def _gen_encoder(specs: list[FieldSpec]) -> FastEncoder:
    out = ["def encode(f, mti, bitmap):", " try:"]
    emit = out.append
    parts = ["mti", "bitmap"]
    for s in specs:
        emit(f"  v{s.number} = f[{s.number}]")
    for i, run in enumerate(_runs(specs)):
        first = run[0]
        x = f"x{i}"
        if not first.variable and first.kind is Kind.N:
            lens = " or ".join(f"len(v{s.number}) != {s.max_len}" for s in run)
            pieces = []
            for s in run:
                v = f"v{s.number}"
                pieces.append((f'{v} + "0"' if s.left else f'"0" + {v}') if s.max_len % 2 else v)
            emit(f"  if {lens}: return None")
            emit(f"  s = {' + '.join(pieces)}")
            emit("  if not (s.isascii() and s.isdigit()): return None")
            emit(f"  {x} = fromhex(s)")
        elif not first.variable and first.kind in (Kind.AN, Kind.ANS):
            lens = " or ".join(f"len(v{s.number}) != {s.max_len}" for s in run)
            emit(f"  if {lens}: return None")  # shorter values are padded by the reference path
            emit(f'  {x} = ({" + ".join(f"v{s.number}" for s in run)}).encode("ascii")')
        elif not first.variable:
            if first.kind is not Kind.B:
                raise ValueError("fixed z fields are not supported by the fast path")
            v = f"v{first.number}"
            emit(f"  if {v}.__class__ is not bytes or len({v}) != {first.max_len}: return None")
            emit(f"  {x} = {v}")
        else:
            s = first
            v = f"v{s.number}"
            prefix = "LL" if s.prefix is Prefix.LL else "LLL"
            if s.kind is Kind.N:
                emit(f"  n = len({v})")
                emit(f"  if n > {s.max_len} or not ({v}.isascii() and ({v}.isdigit() or not n)): return None")
                pad = f'{v} + "0"' if s.left else f'"0" + {v}'
                emit(f"  {x} = {prefix}[n] + fromhex({pad} if n & 1 else {v})")
            elif s.kind is Kind.Z:
                emit(f"  n = len({v})")
                emit(f"  if n > {s.max_len} or not track_ok({v}): return None")
                emit(f'  d = {v}.replace("=", "D")')
                pad = 'd + "0"' if s.left else '"0" + d'
                emit(f"  {x} = {prefix}[n] + fromhex({pad} if n & 1 else d)")
            elif s.kind in (Kind.AN, Kind.ANS):
                emit(f'  e = {v}.encode("ascii")')
                emit(f"  if len(e) > {s.max_len}: return None")
                emit(f"  {x} = {prefix}[len(e)] + e")
            else:
                if s.tlv:
                    emit(f"  if {v}.__class__ is TLV: {v} = {v}.raw")
                emit(f"  if {v}.__class__ is not bytes or len({v}) > {s.max_len}: return None")
                emit(f"  {x} = {prefix}[len({v})] + {v}")
        parts.append(x)
    emit(f"  return b''.join(({', '.join(parts)},))")
    emit(" except (TypeError, AttributeError, ValueError):")  # wrong types, non-ASCII, non-hex
    emit("  return None")
    return _build("encode", out)


class Codec:
    """A dialect compiled into encode/decode. Build once; share freely (it holds no state
    besides bounded caches of generated functions per bitmap and per field set)."""

    _PLAN_CACHE_MAX = 1024

    def __init__(self, fields: Mapping[int, FieldSpec], *, secondary: bool = False) -> None:
        # ``secondary``: the dialect has fields 65-128 behind a secondary bitmap (bit 1), as the
        # 1987 host-to-host layouts do (field 70, 90, 100...). Such a dialect runs on the
        # reference path only: its messages are few per request (docs/upstream.md).
        top = 128 if secondary else 64
        for number, spec in fields.items():
            if number != spec.number or not 2 <= number <= top or number == 65:
                raise ValueError(f"field {number}: bad table entry")
        self.secondary = secondary
        self.mac_field = top  # 64, or 128 behind a secondary bitmap
        self.fields = dict(fields)
        self._dec: dict[int, Decoder] = {}
        self._enc: dict[int, Encoder] = {}
        for number, spec in fields.items():
            self._dec[number], self._enc[number] = compile_field(spec)
        self._known_mask = 0
        for number in fields:
            if number <= 64:
                self._known_mask |= 1 << (64 - number)
        self._known_secondary = 0
        for number in fields:
            if number > 64:
                self._known_secondary |= 1 << (128 - number)
        self._fast = not secondary and all(s.kind is not Kind.Z or s.variable for s in fields.values())
        # bitmap bytes → fast decoder; field numbers as inserted → (fast encoder, bitmap bytes).
        self._dec_plans: dict[bytes, FastDecoder] = {}
        self._enc_plans: dict[tuple[int, ...], tuple[FastEncoder, bytes]] = {}
        self._enc_plans_mac: dict[tuple[int, ...], tuple[FastEncoder, bytes]] = {}
        self._enc_by_set: dict[tuple[int, ...], FastEncoder] = {}
        self._mti: dict[str, bytes] = {}

    # ---------------------------------------------------------------- decode
    def decode(self, body: bytes) -> Message:
        """Decode one message body (from the MTI to the end). Raises :class:`CodecError`."""
        if body.__class__ is not bytes:
            body = bytes(body)  # a bytearray or memoryview: values must not alias a mutable buffer
        if len(body) < 10:
            raise CodecError("mti", "an MTI (2 bytes) and a bitmap (8 bytes)", 0)
        mti = body[:2].hex()
        if not mti.isdigit():
            raise CodecError("mti", "4 BCD digits", 0)
        fast = self._dec_plans.get(body[2:10])
        if fast is not None:
            fields = fast(body)
            if fields is None:
                fields = self._decode_fields(body)
        else:
            fields = self._decode_fields(body)
            self._learn_decoder(body[2:10], fields)
        return Message._trusted(mti, fields, body)

    def _learn_decoder(self, bitmap: bytes, fields: dict[int, FieldValue]) -> None:
        # Only a bitmap that carried a valid message gets a generated decoder, and only while
        # the cache has room: garbage cannot make the codec compile code for every message.
        if self._fast and len(self._dec_plans) < self._PLAN_CACHE_MAX:
            self._dec_plans[bitmap] = _gen_decoder([self.fields[n] for n in sorted(fields)])

    def _decode_fields(self, body: bytes) -> dict[int, FieldValue]:
        """The reference path: field by field, raising the precise error."""
        bitmap = int.from_bytes(body[2:10], "big")
        second = 0
        p = 10
        if bitmap >> 63:
            if not self.secondary:
                raise CodecError("bitmap", "no secondary bitmap (bit 1 is never used in this dialect)", 2)
            if len(body) < 18:
                raise CodecError("bitmap", "a secondary bitmap (8 bytes)", 10)
            second = int.from_bytes(body[10:18], "big")
            p = 18
            if second >> 63:
                raise CodecError("65", "no tertiary bitmap (bit 65 is never used)", 10)
            unknown2 = second & ~self._known_secondary
            if unknown2:
                raise CodecError(str(129 - unknown2.bit_length()), "a field defined by the dialect", 10)
        unknown = bitmap & ~self._known_mask & ~(1 << 63)
        if unknown:
            first = 65 - unknown.bit_length()
            raise CodecError(str(first), "a field defined by the dialect", 2)
        fields: dict[int, FieldValue] = {}
        dec = self._dec
        for number in range(2, 65):
            if bitmap >> (64 - number) & 1:
                fields[number], p = dec[number](body, p)
        if second:
            for number in range(66, 129):
                if second >> (128 - number) & 1:
                    fields[number], p = dec[number](body, p)
        if p != len(body):
            raise CodecError("body", f"end of message, found {len(body) - p} more bytes", p)
        return fields

    def _decode_reference(self, body: bytes) -> Message:
        """Decode by the reference path only (for tests that hold the fast path to it)."""
        if len(body) < 10:
            raise CodecError("mti", "an MTI (2 bytes) and a bitmap (8 bytes)", 0)
        mti = body[:2].hex()
        if not mti.isdigit():
            raise CodecError("mti", "4 BCD digits", 0)
        return Message._trusted(mti, self._decode_fields(body), body)

    # ---------------------------------------------------------------- encode
    def encode(self, msg: Message, mac: Callable[[bytes], bytes] | None = None) -> bytes:
        """Encode ``msg``. With ``mac`` the MAC (field 64, or 128 with a secondary bitmap) is
        computed over the MTI up to the field before it."""
        fields = msg._fields
        key = tuple(fields)  # the field numbers as inserted: one sort per shape, not per message
        plan = (self._enc_plans if mac is None else self._enc_plans_mac).get(key)
        body = None
        if plan is not None:
            body = plan[0](fields, self._mti.get(msg.mti) or self._mti_bytes(msg.mti), plan[1])
        if body is None:
            body = self._encode_reference(msg, mac is not None)
            if plan is None:
                self._learn_encoder(key, mac is not None)
        if mac is not None:
            code = mac(body)
            if len(code) != 8:
                raise CodecError(str(self.mac_field), "an 8-byte MAC from the MAC function")
            return body + code
        return body

    def _mti_bytes(self, mti: object) -> bytes:
        if not isinstance(mti, str) or len(mti) != 4 or not mti.isascii() or not mti.isdigit():
            raise CodecError("mti", "4 digits")
        raw = bytes.fromhex(mti)
        self._mti[mti] = raw  # at most 10,000 entries
        return raw

    def _learn_encoder(self, key: tuple[int, ...], with_mac: bool) -> None:
        # Called after the reference path encoded a message with these fields: they are valid.
        cache = self._enc_plans_mac if with_mac else self._enc_plans
        if not self._fast or len(cache) >= self._PLAN_CACHE_MAX:
            return
        numbers = sorted(key)
        if with_mac and numbers[-1:] == [64]:
            numbers.pop()
        fast = self._enc_by_set.get(tuple(numbers))
        if fast is None:
            if len(self._enc_by_set) >= self._PLAN_CACHE_MAX:
                return
            fast = self._enc_by_set[tuple(numbers)] = _gen_encoder([self.fields[n] for n in numbers])
        bits = 0
        for n in [*numbers, 64] if with_mac else numbers:
            bits |= 1 << (64 - n)
        cache[key] = (fast, bits.to_bytes(8, "big"))

    def _encode_reference(self, msg: Message, with_mac: bool) -> bytes:
        """The reference path: MTI, bitmap and each field, raising the precise error."""
        mti = self._mti.get(msg.mti) or self._mti_bytes(msg.mti)
        fields = msg._fields
        numbers = sorted(fields)
        top = 128 if self.secondary else 64
        if numbers and (numbers[0] < 2 or numbers[-1] > top or 65 in numbers):
            bad = numbers[0] if numbers[0] < 2 else (65 if 65 in numbers else numbers[-1])
            raise CodecError(str(bad), f"field numbers 2..{top}")
        if with_mac and numbers and numbers[-1] == self.mac_field:
            numbers.pop()
        bitmap = 0
        for number in [*numbers, self.mac_field] if with_mac else numbers:
            bitmap |= 1 << (128 - number)
        if bitmap & ((1 << 64) - 1):
            bitmap |= 1 << 127  # bit 1: a secondary bitmap follows
            parts = [mti, bitmap.to_bytes(16, "big")]
        else:
            parts = [mti, (bitmap >> 64).to_bytes(8, "big")]
        enc = self._enc
        for number in numbers:
            try:
                e = enc[number]
            except KeyError:
                raise CodecError(str(number), "a field defined by the dialect") from None
            parts.append(e(fields[number]))
        return b"".join(parts)

    def encode_field(self, number: int, value: FieldValue) -> bytes:
        return self._enc[number](value)
