"""The local master key: encryption of keys and PANs at rest, keyed hashes of PANs and PINs.

The master key is 32 random bytes in a file *outside* the database (a stolen database alone
reveals no key and no card number): ``$POSGATE_MASTER_KEY_FILE`` if set, else next to the SQLite
file (``posgate.db`` → ``posgate.db.key``), else ``posgate.key`` in the working directory (the
usual case for PostgreSQL; every host process on one database must share the same file). It is
created with mode 0600 on first use. Three subkeys are derived from it with HKDF-SHA256, one per
purpose, so that no value computed for one purpose can be replayed as another:

* ``encrypt``: AES-256-GCM for TMKs, working keys, PANs and stored messages (a reply kept to
  answer a retransmission echoes fields 2 and 14: docs/decisions.md S1). A blob is ``version (1)
  || nonce (12) || ciphertext || tag (16)``; the purpose (``b"tmk"``, ``b"pan"``, ``b"message"``...)
  is the associated data, so a PAN blob can never be decrypted as a key;
* ``pan``: HMAC-SHA256 of the PAN, hex (``pan_hash``: lookups and joins without the number);
* ``pin``: HMAC-SHA256 of PAN || PIN, hex (the built-in issuer's PIN verifier; never the PIN).

A database remembers which master key it was written with (``settings.keyring_check``, a MAC of
a fixed label); ``posgate.store.database.bind_keyring`` refuses a key file that does not match, with a message
saying what to do, instead of failing later on every decryption.

Nothing here logs, prints or puts key material in a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from posgate.keyfile import create_key_file
from posgate.store.engine import sqlite_path

ENV_VAR = "POSGATE_MASTER_KEY_FILE"
KEY_LEN = 32
_VERSION = b"\x01"
_NONCE_LEN = 12
# Purposes whose clear value holds card data: never kept in the decryption cache.
_CARD_DATA = frozenset({b"pan", b"message"})


class KeyringError(RuntimeError):
    """The master key file is missing, unreadable, malformed or belongs to another database."""


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"posgate/" + label).derive(master)


class Keyring:
    """Holds the derived subkeys in memory. Thread-safe (no mutable state besides a bounded cache)."""

    __slots__ = ("_aead", "_pan_key", "_pin_key", "_check", "_cache", "path")

    _CACHE_MAX = 4096

    def __init__(self, master: bytes, path: Path | None = None) -> None:
        if len(master) != KEY_LEN:
            raise KeyringError(f"the master key must be {KEY_LEN} bytes")
        self.path = path
        self._aead = AESGCM(_derive(master, b"encrypt"))
        self._pan_key = _derive(master, b"pan")
        self._pin_key = _derive(master, b"pin")
        self._check = hmac.new(_derive(master, b"check"), b"posgate keyring v1", hashlib.sha256).hexdigest()[:32]
        self._cache: dict[tuple[bytes, bytes], bytes] = {}

    def __repr__(self) -> str:
        return f"Keyring(path={str(self.path)!r})"

    @property
    def check_value(self) -> str:
        """Identifies the master key without revealing it (stored in the database's settings)."""
        return self._check

    # -- encryption at rest
    def encrypt(self, data: bytes, purpose: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_LEN)
        return _VERSION + nonce + self._aead.encrypt(nonce, bytes(data), purpose)

    def decrypt(self, blob: bytes, purpose: bytes) -> bytes:
        """Decrypt ``blob``. Keys are cached (they are read on every transaction); card numbers
        and messages are not (no clear PAN outlives its request in this process)."""
        blob = bytes(blob)
        cache_key = (blob, purpose)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        if len(blob) < 1 + _NONCE_LEN + 16 or blob[:1] != _VERSION:
            raise KeyringError("not a posgate keyring blob")
        try:
            clear = self._aead.decrypt(blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :], purpose)
        except Exception:  # noqa: BLE001 - InvalidTag: say what it means, never echo data
            raise KeyringError(
                "a value in the database cannot be decrypted with this master key "
                "(wrong key file, or the data was altered)"
            ) from None
        if purpose not in _CARD_DATA:
            if len(self._cache) >= self._CACHE_MAX:
                self._cache.clear()
            self._cache[cache_key] = clear
        return clear

    # -- keyed hashes
    def pan_hash(self, pan: str) -> str:
        return hmac.digest(self._pan_key, pan.encode("ascii"), "sha256").hex()

    def pin_verifier(self, pan: str, pin: str) -> str:
        return hmac.digest(self._pin_key, f"{pan}|{pin}".encode("ascii"), "sha256").hex()

    def verify_pin(self, pan: str, pin: str, verifier: str) -> bool:
        return hmac.compare_digest(self.pin_verifier(pan, pin), verifier)

    # -- convenience for the store
    def encrypt_pan(self, pan: str) -> bytes:
        return self.encrypt(pan.encode("ascii"), b"pan")

    def decrypt_pan(self, blob: bytes) -> str:
        return self.decrypt(blob, b"pan").decode("ascii")

    def seal_message(self, raw: bytes) -> bytes:
        """A stored ISO 8583 message (header + body): it may carry fields 2, 14, 35, 36, 55."""
        return self.encrypt(raw, b"message")

    def open_message(self, blob: bytes) -> bytes:
        return self.decrypt(blob, b"message")

    def encrypt_key(self, key: bytes, purpose: bytes = b"key") -> bytes:
        return self.encrypt(key, purpose)

    def decrypt_key(self, blob: bytes, purpose: bytes = b"key") -> bytes:
        return self.decrypt(blob, purpose)


def default_key_path(db_url: str | None) -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    db = sqlite_path(db_url or "")
    if db is not None:
        return db.with_name(db.name + ".key")
    return Path("posgate.key")


def load_keyring(path: Path | str | None = None, *, db_url: str | None = None, create: bool = True) -> Keyring:
    """Read the master key file (creating it, mode 0600, when absent and ``create``)."""
    p = Path(path) if path is not None else default_key_path(db_url)
    try:
        master = p.read_bytes()
    except FileNotFoundError:
        if not create:
            raise KeyringError(f"master key file {p} not found, and this database was written with a key: set "
                               f"${ENV_VAR} to the key file of this database (a new key could read none of its data)") from None
        created = create_key_file(p, KEY_LEN)
        if created is None:  # another process created it first: use theirs
            return load_keyring(p, create=False)
        master = created
    except PermissionError:
        raise KeyringError(f"master key file {p} is not readable by this user") from None
    if len(master) != KEY_LEN:
        raise KeyringError(f"master key file {p} must hold exactly {KEY_LEN} bytes (it holds {len(master)})")
    return Keyring(master, p)
