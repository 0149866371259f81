"""posgate.crypto: the payment cryptography of a CUP POS terminal and its acquiring host.

What it owns: DES/TDES (one adapter over ``cryptography``'s decrepit ``TripleDES``, always
with 24-byte keys), key check values, sign-on working keys (field 62), ISO 9564 PIN blocks
(formats 0-4), the CUP ECB MAC and the ISO 9797-1 / X9.9 / X9.19 MACs, CUP track-data
encryption, TDES and AES DUKPT, and Luhn; and SM4 (国密) for national-cryptography terminals,
where the cipher is a parameter of the same key, MAC, PIN and track methods (``ciphers``). Every algorithm is locked to the verified vectors
of ``crypto-vectors.json`` by ``tests/crypto``.

Why it is shaped this way: it is pure computation. It does no I/O and reads neither the
clock nor an entropy source (an import-linter contract enforces this); randomness is passed
in as ``randbytes: Callable[[int], bytes]``. Cipher contexts are cached per key because on a
host the MAC and PIN operations are the hot path. Key, PIN and track material never appears
in a ``repr``, a log line or an exception message.
"""

from __future__ import annotations

from posgate.crypto.ciphers import DES, SM4, BlockCipher, cipher_for
from posgate.crypto.dukpt import (
    aes_dukpt_initial_key,
    aes_dukpt_transaction_key,
    dukpt_ipek,
    dukpt_mac_request_key,
    dukpt_mac_response_key,
    dukpt_pin_key,
    dukpt_transaction_key,
)
from posgate.crypto.errors import CheckValueError, CryptoError, PinBlockError
from posgate.crypto.keys import (
    WorkingKeys,
    generate_working_keys,
    scheme_cipher,
    set_odd_parity,
    unwrap_working_keys,
    wrap_working_keys,
)
from posgate.crypto.luhn import luhn_check_digit, luhn_valid
from posgate.crypto.mac import (
    cup_ecb_mac,
    iso9797_alg1_tdes_mac,
    mac_verify,
    x9_9_mac,
    x9_19_mac,
)
from posgate.crypto.pinblock import (
    decrypt_pin,
    decrypt_pin_block,
    encrypt_pin,
    encrypt_pin_block,
    pin_block_format0,
    pin_block_format1,
    pin_block_format2,
    pin_block_format3,
    pin_block_format4_decipher,
    pin_block_format4_encipher,
    pin_from_format0,
    translate_pin_block,
)
from posgate.crypto.sm4 import sm4_decrypt, sm4_encrypt
from posgate.crypto.tdes import des_decrypt, des_encrypt, kcv
from posgate.crypto.track import decrypt_track, encrypt_track

__all__ = [
    "DES",
    "SM4",
    "BlockCipher",
    "CheckValueError",
    "CryptoError",
    "PinBlockError",
    "WorkingKeys",
    "aes_dukpt_initial_key",
    "aes_dukpt_transaction_key",
    "cipher_for",
    "cup_ecb_mac",
    "decrypt_pin",
    "decrypt_pin_block",
    "decrypt_track",
    "des_decrypt",
    "des_encrypt",
    "dukpt_ipek",
    "dukpt_mac_request_key",
    "dukpt_mac_response_key",
    "dukpt_pin_key",
    "dukpt_transaction_key",
    "encrypt_pin",
    "encrypt_pin_block",
    "encrypt_track",
    "generate_working_keys",
    "iso9797_alg1_tdes_mac",
    "kcv",
    "luhn_check_digit",
    "luhn_valid",
    "mac_verify",
    "pin_block_format0",
    "pin_block_format1",
    "pin_block_format2",
    "pin_block_format3",
    "pin_block_format4_decipher",
    "pin_block_format4_encipher",
    "pin_from_format0",
    "scheme_cipher",
    "set_odd_parity",
    "sm4_decrypt",
    "sm4_encrypt",
    "translate_pin_block",
    "unwrap_working_keys",
    "wrap_working_keys",
    "x9_19_mac",
    "x9_9_mac",
]
