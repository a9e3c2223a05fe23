"""The armored private key of `inferenced keys export NAME` (cosmos-sdk crypto/armor).

::

    -----BEGIN TENDERMINT PRIVATE KEY-----
    kdf: bcrypt
    salt: <16 bytes, upper-case hex>
    type: secp256k1

    <base64 body, 64 characters a line>
    =<CRC-24 of the body, base64>
    -----END TENDERMINT PRIVATE KEY-----

Key = SHA-256 of the bcrypt hash string (cost 12, the header's 16-byte salt) of the
passphrase; body = 24-byte nonce || NaCl secretbox (XSalsa20-Poly1305) of the amino
private key (``e1b0f79b 20`` + 32 bytes). Headers may come in any order (Go writes a
map). `bcrypt` and `nacl` are imported inside the functions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys.records import AMINO_PRIV, amino_private_key

BEGIN = "-----BEGIN TENDERMINT PRIVATE KEY-----"
END = "-----END TENDERMINT PRIVATE KEY-----"
BCRYPT_COST = 12
_BCRYPT_ALPHABET = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_STD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_HEADER = re.compile(r"([A-Za-z0-9_-]+):\s*(.*)")


def looks_armored(text: str) -> bool:
    """Whether `text` holds an armored private key block."""
    return BEGIN in text


def crc24(data: bytes) -> int:
    """The OpenPGP CRC-24 (RFC 4880 section 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _key(passphrase: str, salt: bytes) -> bytes:
    import bcrypt

    secret = passphrase.encode()
    if len(secret) > 72:
        raise UsageError("the armor passphrase is longer than bcrypt's 72 bytes")
    encoded = base64.b64encode(salt).rstrip(b"=").translate(
        bytes.maketrans(_STD_ALPHABET, _BCRYPT_ALPHABET)
    )
    hashed = bcrypt.hashpw(secret, b"$2a$%02d$" % BCRYPT_COST + encoded[:22])
    return hashlib.sha256(hashed).digest()


def _parse(text: str) -> tuple[dict[str, str], bytes]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise UsageError("no complete -----BEGIN/END TENDERMINT PRIVATE KEY----- block")
    lines = [line.strip() for line in text[start + len(BEGIN) : end].strip("\r\n").splitlines()]
    headers: dict[str, str] = {}
    while lines and lines[0]:
        match = _HEADER.fullmatch(lines.pop(0))
        if match is None:
            raise UsageError("the armored key's headers are malformed")
        headers[match.group(1).lower()] = match.group(2).strip()
    body_lines = [line for line in lines if line]
    checksum = body_lines.pop() if body_lines and body_lines[-1].startswith("=") else None
    try:
        body = base64.b64decode("".join(body_lines), validate=True)
        expected = base64.b64decode(checksum[1:], validate=True) if checksum else None
    except (binascii.Error, ValueError):
        raise UsageError("the armored key's body is not base64") from None
    if expected is not None and int.from_bytes(expected, "big") != crc24(body):
        raise UsageError("the armored key's checksum does not match: it was altered or cut")
    return headers, body


def decrypt(text: str, passphrase: str) -> bytes:
    """The 32-byte secret inside an armored block; ConfigError for a wrong passphrase."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    headers, body = _parse(text)
    kdf, kind = headers.get("kdf", ""), headers.get("type", "secp256k1")
    if kdf != "bcrypt":
        raise ConfigError(f"the armored key uses kdf {kdf!r}; gonka reads kdf: bcrypt")
    if kind != "secp256k1":
        raise ConfigError(f"the armored key is of type {kind!r}; gonka signs only with secp256k1")
    try:
        salt = bytes.fromhex(headers.get("salt", ""))
    except ValueError:
        raise UsageError("the armored key's salt is not hex") from None
    if len(salt) != 16 or len(body) < 24 + 16:
        raise UsageError("the armored key's salt or body has the wrong length")
    try:
        plain = SecretBox(_key(passphrase, salt)).decrypt(body)
    except CryptoError:
        raise ConfigError(
            "wrong passphrase for the armored key: the cipher rejected it",
            hint="it is the passphrase typed at `inferenced keys export`",
        ) from None
    if plain[:4] != AMINO_PRIV or len(plain) != 37 or plain[4] != 32:
        raise ConfigError("the armored key does not hold a secp256k1 private key")
    return plain[5:]


def encrypt(secret: bytes, passphrase: str, *, random: bytes | None = None) -> str:
    """The armored block `inferenced keys import` reads."""
    from nacl.secret import SecretBox

    noise = random if random is not None else os.urandom(16 + 24)
    salt, nonce = noise[:16], noise[16:40]
    body = bytes(SecretBox(_key(passphrase, salt)).encrypt(amino_private_key(secret), nonce))
    encoded = base64.b64encode(body).decode()
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    checksum = base64.b64encode(crc24(body).to_bytes(3, "big")).decode()
    headers = ["kdf: bcrypt", f"salt: {salt.hex().upper()}", "type: secp256k1"]
    return "\n".join([BEGIN, *headers, "", *lines, f"={checksum}", END]) + "\n"
