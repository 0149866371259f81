"""The local master key: file handling, encryption bound to its purpose, keyed hashes."""

from __future__ import annotations

import os
import stat

import pytest

from posgate.store.database import Database
from posgate.store.keyring import Keyring, KeyringError, default_key_path, load_keyring


def test_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "k" / "master.key"
    k1 = load_keyring(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.stat().st_size == 32
    k2 = load_keyring(path)
    assert k1.check_value == k2.check_value
    assert "master" not in repr(k1) or "key" in repr(k1)  # the repr names the file, never the key
    assert path.read_bytes().hex() not in repr(k1)


def test_missing_file_not_created_on_request(tmp_path):
    with pytest.raises(KeyringError, match="not found"):
        load_keyring(tmp_path / "absent.key", create=False)


def test_wrong_size_refused(tmp_path):
    p = tmp_path / "short.key"
    p.write_bytes(b"x" * 16)
    with pytest.raises(KeyringError, match="32 bytes"):
        load_keyring(p)


def test_encryption_is_randomised_and_bound_to_purpose(tmp_path):
    k = load_keyring(tmp_path / "m.key")
    tmk = bytes.fromhex("159D86C7C1F779EA29F77A6858E0DA2A")
    a, b = k.encrypt(tmk, b"tmk"), k.encrypt(tmk, b"tmk")
    assert a != b and tmk not in a
    assert k.decrypt(a, b"tmk") == tmk
    with pytest.raises(KeyringError):
        k.decrypt(a, b"pan")  # a key blob cannot be read as something else
    other = Keyring(os.urandom(32))
    with pytest.raises(KeyringError, match="master key"):
        other.decrypt(a, b"tmk")
    tampered = a[:-1] + bytes([a[-1] ^ 1])
    with pytest.raises(KeyringError):
        k.decrypt(tampered, b"tmk")


def test_pan_hash_and_pin_verifier(tmp_path):
    k = load_keyring(tmp_path / "m.key")
    pan = "6212142000000000012"
    assert k.pan_hash(pan) == k.pan_hash(pan) and len(k.pan_hash(pan)) == 64
    assert pan not in k.pan_hash(pan)
    assert k.pan_hash(pan) != Keyring(os.urandom(32)).pan_hash(pan)  # keyed, not a plain hash
    v = k.pin_verifier(pan, "123456")
    assert k.verify_pin(pan, "123456", v)
    assert not k.verify_pin(pan, "123457", v)
    assert k.pin_verifier("6217000000000000020", "123456") != v  # bound to the card
    assert k.decrypt_pan(k.encrypt_pan(pan)) == pan


def test_default_location(tmp_path, monkeypatch):
    monkeypatch.delenv("POSGATE_MASTER_KEY_FILE", raising=False)
    assert default_key_path(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db.key"
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "env.key"))
    assert default_key_path("postgresql://h/db") == tmp_path / "env.key"


def test_database_refuses_another_master_key(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/p.db"
    Database.open(url).close()
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "other.key"))
    # a missing key file is not made anew for a database that has a key: that key could read nothing
    with pytest.raises(KeyringError, match="not found"):
        Database.open(url)
    assert not (tmp_path / "other.key").exists()
    (tmp_path / "other.key").write_bytes(bytes(range(32)))
    with pytest.raises(KeyringError, match="not the one this database was written with"):
        Database.open(url)
