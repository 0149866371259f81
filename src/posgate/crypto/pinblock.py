"""ISO 9564-1 PIN blocks: building, parsing, encrypting and translating them.

Theory of operation (docs/dialect.md 6.1 and appendix A)
-------------------------------------------------------------
A PIN never travels alone: it is formatted into a 16-nibble *PIN field* (control nibble,
PIN length, PIN digits, fill) which, for formats 0 and 3, is XORed with a *PAN field*
(``0000`` + the 12 rightmost PAN digits excluding the check digit) so that the same PIN
gives different blocks on different cards. The result is encrypted with the PIN key (PIK):
single DES for an 8-byte PIK, 2-key TDES for 16 bytes. CUP POS terminals send format 0
under the PIK in field 52 (53.1 = ``2``, 53.2 = ``6`` for TDES).

=======  ==================================  ===========================================
format   PIN field                           notes
=======  ==================================  ===========================================
0        ``0`` n PIN ``F…``                  XOR PAN field (ANSI X9.8)
1        ``1`` n PIN fill (any hex)          no PAN; fill is transaction-unique
2        ``2`` n PIN ``F…``                  ICC offline PIN, never encrypted
3        ``3`` n PIN fill (random A–F)       XOR PAN field
4 (AES)  ``4`` n PIN ``A…`` + 8 random bytes  ``E(E(PIN field) XOR PAN field)``; 16 bytes
=======  ==================================  ===========================================

Decoding checks everything a host can check: the control nibble, a length of 4..12, decimal
PIN digits and the fill rule. Any failure (most often a wrong key or a wrong PAN) raises
:class:`PinBlockError` whose message never contains the PIN, the block or the PAN.
:func:`translate_pin_block` re-encrypts a block from one key to another without ever
returning the PIN (what a switch does between a terminal's PIK and an issuer key).

*SM4 terminals* (docs/dialect.md 4.4, docs/decisions.md N3) use format 0 widened to the
16-byte SM4 block: a 32-nibble PIN field ``0`` n PIN ``F…`` XOR a 32-nibble PAN field of
20 ``0`` nibbles + the same 12 PAN digits, SM4-ECB under the 16-byte PIK. The format-0
functions take the cipher as a parameter (``cipher=SM4``); :func:`translate_pin_block`
re-blocks the PIN when the source and destination ciphers differ (SM4 terminal PIK -> DES
zone key), as an HSM's translate-with-format-conversion does.

Randomness (format 3 and 4 fill) is passed in by the caller; nothing here draws it.
"""

from __future__ import annotations

from collections.abc import Callable

from posgate.crypto.aes import aes_decrypt, aes_encrypt
from posgate.crypto.ciphers import DES, BlockCipher
from posgate.crypto.errors import PinBlockError

__all__ = [
    "decrypt_pin",
    "decrypt_pin_block",
    "encrypt_pin",
    "encrypt_pin_block",
    "pan_field_format0",
    "pan_field_format4",
    "pin_block_format0",
    "pin_block_format1",
    "pin_block_format2",
    "pin_block_format3",
    "pin_block_format4_decipher",
    "pin_block_format4_encipher",
    "pin_field_format4",
    "pin_from_format0",
    "pin_from_format1",
    "pin_from_format2",
    "pin_from_format3",
    "random_fill_af",
    "translate_pin_block",
]

_HEX = "0123456789ABCDEF"


def _digits(s: object) -> bool:
    return isinstance(s, str) and s.isascii() and s.isdigit()


def _check_pin(pin: str) -> None:
    if not _digits(pin) or not 4 <= len(pin) <= 12:
        raise PinBlockError("PIN must be 4 to 12 decimal digits")


def _check_pan(pan: str) -> None:
    if not _digits(pan) or not 2 <= len(pan) <= 19:
        raise PinBlockError("PAN must be 2 to 19 decimal digits")


def pan_field_format0(pan: str, width: int = 8) -> bytes:
    """The PAN field of formats 0 and 3: ``0`` nibbles + 12 rightmost PAN digits excl. check digit.

    8 bytes (``0000`` + 12 digits) for DES; ``width=16`` for the SM4 block (20 ``0`` + 12 digits).
    """
    _check_pan(pan)
    return bytes.fromhex(pan[:-1][-12:].rjust(12, "0").rjust(2 * width, "0"))


def _pin_field(control: str, pin: str, fill: str, width: int = 8) -> str:
    _check_pin(pin)
    head = f"{control}{len(pin):X}{pin}"
    need = 2 * width - len(head)
    if len(fill) < need:
        raise PinBlockError(f"format {control} needs {need} fill nibbles, got {len(fill)}")
    return head + fill[:need]


def _xor8(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def pin_block_format0(pin: str, pan: str, cipher: BlockCipher = DES) -> bytes:
    """Clear ISO 9564-1 format 0 (ANSI X9.8) PIN block: ``0`` n PIN ``F…`` XOR PAN field.

    One cipher block wide: 8 bytes for DES, 16 for SM4 (``cipher=SM4``).
    """
    n = cipher.block
    field = bytes.fromhex(_pin_field("0", pin, "F" * (2 * n - 2), n))
    return _xor8(field, pan_field_format0(pan, n))


def _fill_nibbles(fill: bytes) -> str:
    if not isinstance(fill, bytes | bytearray):
        raise PinBlockError("fill must be bytes")
    return bytes(fill).hex().upper()


def pin_block_format1(pin: str, fill: bytes) -> bytes:
    """Clear format 1 block: ``1`` n PIN + the leading nibbles of ``fill`` (any hex value).

    ``fill`` must supply at least ``14 - len(pin)`` nibbles (7 random bytes always suffice).
    """
    return bytes.fromhex(_pin_field("1", pin, _fill_nibbles(fill)))


def pin_block_format2(pin: str) -> bytes:
    """Format 2 block (ICC offline PIN verification; not XORed, not encrypted)."""
    return bytes.fromhex(_pin_field("2", pin, "F" * 14))


def pin_block_format3(pin: str, pan: str, fill: bytes) -> bytes:
    """Clear format 3 block: ``3`` n PIN + fill nibbles (each A..F, as given) XOR PAN field.

    ``fill`` supplies the nibbles (e.g. ``bytes.fromhex("ABCDEFABCD")``); see
    :func:`random_fill_af` for drawing them.
    """
    nibbles = _fill_nibbles(fill)
    field = _pin_field("3", pin, nibbles)
    if any(c not in "ABCDEF" for c in field[2 + len(pin) :]):
        raise PinBlockError("format 3 fill nibbles must be A..F")
    return _xor8(bytes.fromhex(field), pan_field_format0(pan))


def random_fill_af(randbytes: Callable[[int], bytes], nibbles: int = 10) -> bytes:
    """Uniformly random fill nibbles in A..F for format 3, packed as bytes (padded with ``A``).

    Rejection sampling: a random nibble v < 12 gives ``A + v mod 6``; 12..15 are redrawn.
    """
    out: list[str] = []
    while len(out) < nibbles:
        for byte in randbytes(nibbles):
            for v in (byte >> 4, byte & 0x0F):
                if v < 12 and len(out) < nibbles:
                    out.append(_HEX[10 + v % 6])
    if len(out) % 2:
        out.append("A")
    return bytes.fromhex("".join(out))


def _parse_pin_field(field: bytes, control: str, fill_ok: Callable[[str], bool]) -> str:
    s = field.hex().upper()
    if s[0] != control:
        raise PinBlockError(f"not an ISO 9564 format {control} PIN block")
    n = int(s[1], 16)
    if not 4 <= n <= 12:
        raise PinBlockError("PIN block has an invalid PIN length")
    pin = s[2 : 2 + n]
    if not pin.isdigit():
        raise PinBlockError("PIN block has non-decimal PIN digits")
    if not fill_ok(s[2 + n :]):
        raise PinBlockError(f"PIN block fill does not follow format {control}")
    return pin


def _all_f(fill: str) -> bool:
    return fill == "F" * len(fill)


def _all_af(fill: str) -> bool:
    return all(c in "ABCDEF" for c in fill)


def _any_fill(fill: str) -> bool:
    return True


def _check_block8(block: bytes, width: int = 8) -> bytes:
    if not isinstance(block, bytes | bytearray) or len(block) != width:
        raise PinBlockError(f"PIN block must be {width} bytes")
    return bytes(block)


def pin_from_format0(block: bytes, pan: str, cipher: BlockCipher = DES) -> str:
    """The PIN of a clear format 0 block; checks control nibble, length 4..12 and ``F`` fill."""
    n = cipher.block
    return _parse_pin_field(_xor8(_check_block8(block, n), pan_field_format0(pan, n)), "0", _all_f)


def pin_from_format1(block: bytes) -> str:
    """The PIN of a clear format 1 block (the fill is not checked: it may be any hex)."""
    return _parse_pin_field(_check_block8(block), "1", _any_fill)


def pin_from_format2(block: bytes) -> str:
    """The PIN of a format 2 block (``F`` fill)."""
    return _parse_pin_field(_check_block8(block), "2", _all_f)


def pin_from_format3(block: bytes, pan: str) -> str:
    """The PIN of a clear format 3 block (fill nibbles must be A..F)."""
    return _parse_pin_field(_xor8(_check_block8(block), pan_field_format0(pan)), "3", _all_af)


def encrypt_pin_block(pik: bytes, clear_block: bytes, cipher: BlockCipher = DES) -> bytes:
    """Encrypt one PIN block: DES for an 8-byte PIK, TDES for 16 (or 24) bytes; SM4 16 bytes."""
    return cipher.encrypt(pik, _check_block8(clear_block, cipher.block))


def decrypt_pin_block(pik: bytes, enc_block: bytes, cipher: BlockCipher = DES) -> bytes:
    """Decrypt one PIN block (inverse of :func:`encrypt_pin_block`)."""
    return cipher.decrypt(pik, _check_block8(enc_block, cipher.block))


def encrypt_pin(pik: bytes, pin: str, pan: str, cipher: BlockCipher = DES) -> bytes:
    """What a terminal sends as its PIN block: format 0 encrypted under the PIK."""
    return encrypt_pin_block(pik, pin_block_format0(pin, pan, cipher), cipher)


def decrypt_pin(pik: bytes, enc_block: bytes, pan: str, cipher: BlockCipher = DES) -> str:
    """What a host/issuer does with a PIN block: decrypt under the PIK and decode format 0."""
    return pin_from_format0(decrypt_pin_block(pik, enc_block, cipher), pan, cipher)


def translate_pin_block(
    src_key: bytes,
    dst_key: bytes,
    enc_block: bytes,
    *,
    pan: str | None = None,
    src_cipher: BlockCipher = DES,
    dst_cipher: BlockCipher = DES,
) -> bytes:
    """Re-encrypt a PIN block from ``src_key`` to ``dst_key``; the PIN is never returned.

    With one block size on both sides the format is kept as is; with ``pan`` given, the clear
    block is first checked to be a well-formed format 0 block for that PAN (a wrong source
    key or PAN then raises :class:`PinBlockError` instead of forwarding garbage). When the
    ciphers' blocks differ (an SM4 terminal's 16-byte block to a DES zone key) the block must
    be format 0 and ``pan`` is required: the PIN is re-blocked as format 0 for the destination.
    """
    clear = decrypt_pin_block(src_key, enc_block, src_cipher)
    if src_cipher.block == dst_cipher.block:
        if pan is not None:
            pin_from_format0(clear, pan, src_cipher)
        return encrypt_pin_block(dst_key, clear, dst_cipher)
    if pan is None:
        raise PinBlockError("re-blocking a PIN between ciphers needs the PAN (format 0)")
    return encrypt_pin(dst_key, pin_from_format0(clear, pan, src_cipher), pan, dst_cipher)


# --- format 4 (AES) -------------------------------------------------------------------------


def pin_field_format4(pin: str, random8: bytes) -> bytes:
    """The 16-byte plain PIN field of format 4: ``4`` n PIN ``A…`` (8 bytes) + 8 random bytes."""
    if not isinstance(random8, bytes | bytearray) or len(random8) != 8:
        raise PinBlockError("format 4 needs exactly 8 random bytes")
    return bytes.fromhex(_pin_field("4", pin, "A" * 14)) + bytes(random8)


def pan_field_format4(pan: str) -> bytes:
    """The 16-byte plain PAN field of format 4: M = len(PAN) - 12 (min 0), PAN (min 12 digits), 0-padded."""
    _check_pan(pan)
    digits = pan.rjust(12, "0")
    return bytes.fromhex(f"{len(digits) - 12:X}{digits}".ljust(32, "0"))


def _xor16(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


def pin_block_format4_encipher(key: bytes, pin: str, pan: str, random8: bytes) -> bytes:
    """Format 4 enciphered PIN block (16 bytes): ``E_K(E_K(PIN field) XOR PAN field)``, AES."""
    inner = aes_encrypt(key, pin_field_format4(pin, random8))
    return aes_encrypt(key, _xor16(inner, pan_field_format4(pan)))


def pin_block_format4_decipher(key: bytes, block: bytes, pan: str) -> str:
    """The PIN of an enciphered format 4 block; checks control nibble, length and ``A`` fill."""
    if not isinstance(block, bytes | bytearray) or len(block) != 16:
        raise PinBlockError("format 4 PIN block must be 16 bytes")
    inner = _xor16(aes_decrypt(key, bytes(block)), pan_field_format4(pan))
    field = aes_decrypt(key, inner)
    return _parse_pin_field(field[:8], "4", lambda f: f == "A" * len(f))
