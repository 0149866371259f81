"""CUP track-data encryption with the TDK (fields 35/36 when 53.3 = ``1``).

Theory of operation (docs/dialect.md 6.3)
-------------------------------------------------------------
A track is a string of BCD nibbles: digits, and the field separator written ``=`` or as
nibble ``D``. Only one 8-byte block is encrypted, the *track data block* (TDB): pack the
track to BCD (append a ``0`` nibble when the digit count is odd); the TDB is the 8 bytes
that end just before the last byte, ``bcd[-9:-1]``. It is replaced in place by its 2-key
TDES-ECB encryption under the TDK, then the track is unpacked and the padding nibble
dropped, so the length is unchanged. Tracks shorter than 17 digits are left-padded with
``F`` first (LY terminal rule); decryption strips leading ``F`` nibbles again. The start of
the PAN and usually the separator stay in clear.

Alphabet: the encrypted block is hex, so an encrypted track contains ``A``–``F`` nibbles.
A track is rendered with nibble ``D`` written as the *separator character*, ``=`` or ``D``:
in the ``=`` form a ``D`` nibble of the ciphertext is written ``=`` too, which is exactly how
a BCD track codec that maps nibble D to ``=`` (field 35/36 on the wire) shows the bytes.
Both functions accept ``=`` and ``D`` on input (lower-case hex too).

Which form comes back: :func:`encrypt_track` reads it off its clear input (``D`` if the
track is written with one, else ``=``), which is exact. :func:`decrypt_track` must not guess from the
*ciphertext*: with a 14-, 16- or 18-digit PAN the separator itself lies in the encrypted
block, and about one key in three (15/16 to the 16th power) gives a block with no ``D``
nibble, so the encrypted string then shows no separator at all. Reading that as "the ``D``
form" once returned the PAN run into the expiry date, and the host declined a good card
``14``. So a track is in the ``D`` form only if it shows a ``D``; otherwise it is taken as
the ``=`` form, the form of the wire and of the card reader. Pass ``separator=`` to be exact.

*SM4 terminals* (docs/dialect.md 4.4): the same rule with the 16-byte SM4 block under the
SM4 TDK: the TDB is ``bcd[-17:-1]`` and tracks shorter than 33 digits are left-padded with
``F``. ``cipher=SM4``; one code path for both.

After decryption the block must hold track nibbles only (digits, ``D``, leading ``F``);
anything else means a wrong TDK and raises :class:`CryptoError`. No message contains track
data.
"""

from __future__ import annotations

from posgate.crypto.ciphers import DES, BlockCipher
from posgate.crypto.errors import CryptoError

__all__ = ["decrypt_track", "encrypt_track", "track_data_block"]

_CLEAR_NIBBLES = frozenset("0123456789D")
_ANY_NIBBLES = frozenset("0123456789ABCDEF")


def _separator(track: str, separator: str | None) -> str:
    if separator is None:
        # '=' unless the input visibly is in the D form (module docstring: a ciphertext
        # block may hide the separator, so its absence must not decide).
        return "D" if "D" in track.upper() and "=" not in track else "="
    if separator not in ("=", "D"):
        raise CryptoError("track separator must be '=' or 'D'")
    return separator


def _nibbles(track: str, allowed: frozenset[str]) -> str:
    if not isinstance(track, str):
        raise CryptoError("track must be a str")
    s = track.upper().replace("=", "D")
    if not s or not set(s) <= allowed:
        raise CryptoError("track contains characters outside its alphabet")
    return s


def _min_digits(cipher: BlockCipher) -> int:
    return 2 * cipher.block + 1  # 17 for DES, 33 for SM4


def _padded(s: str, cipher: BlockCipher = DES) -> tuple[str, int, bool]:
    """(even-length nibble string with >= 2*block+2 nibbles, F nibbles prepended, 0 appended?)."""
    lead = max(0, _min_digits(cipher) - len(s))
    s = "F" * lead + s
    odd = len(s) % 2 == 1
    return (s + "0" if odd else s), lead, odd


def _render(s: str, sep: str) -> str:
    return s if sep == "D" else s.replace("D", "=")


def track_data_block(track: str, cipher: BlockCipher = DES) -> bytes:
    """The clear TDB of ``track``: ``bcd[-9:-1]`` (DES) or ``bcd[-17:-1]`` (SM4) after padding."""
    s, _, _ = _padded(_nibbles(track, _CLEAR_NIBBLES), cipher)
    w = 2 * cipher.block + 2
    return bytes.fromhex(s[-w:-2])


def encrypt_track(tdk: bytes, track: str, *, separator: str | None = None, cipher: BlockCipher = DES) -> str:
    """Encrypt the TDB of ``track`` (digits with ``=`` or ``D``) under the TDK.

    Returns the track in the same alphabet as the input (see the module docstring).
    """
    sep = _separator(track, separator)
    s, _, odd = _padded(_nibbles(track, _CLEAR_NIBBLES), cipher)
    w = 2 * cipher.block + 2
    enc = cipher.encrypt(tdk, bytes.fromhex(s[-w:-2])).hex().upper()
    out = s[:-w] + enc + s[-2:]
    return _render(out[:-1] if odd else out, sep)


def decrypt_track(tdk: bytes, track: str, *, separator: str | None = None, cipher: BlockCipher = DES) -> str:
    """Inverse of :func:`encrypt_track`; raises :class:`CryptoError` if the result is not a track."""
    sep = _separator(track, separator)
    s = _nibbles(track, _ANY_NIBBLES)
    need = _min_digits(cipher)
    if len(s) < need:
        raise CryptoError(f"encrypted track must have at least {need} nibbles, got {len(s)}")
    odd = len(s) % 2 == 1
    if odd:
        s += "0"
    w = 2 * cipher.block + 2
    clear = s[:-w] + cipher.decrypt(tdk, bytes.fromhex(s[-w:-2])).hex().upper() + s[-2:]
    if odd:
        clear = clear[:-1]
    clear = clear.lstrip("F")
    if not clear or not set(clear) <= _CLEAR_NIBBLES:
        raise CryptoError("decrypted track is not track data (wrong TDK?)")
    return _render(clear, sep)
