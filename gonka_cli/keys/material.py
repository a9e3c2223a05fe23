"""Private keys, public keys and ``gonka1...`` addresses (pure: no I/O).

An address is bech32 (BIP-173) with the prefix ``gonka`` over
RIPEMD160(SHA256(33-byte compressed public key)), as docs/protocol.md section 7 says.
No error raised here ever contains the key material it was given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

import bech32
import coincurve

from gonka_cli.errors import ConfigError, UsageError

HRP = "gonka"
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX = re.compile(r"[0-9a-fA-F]*")


def _ripemd160(data: bytes) -> bytes:
    """RIPEMD-160 from OpenSSL (through hashlib), which every supported Python build offers."""
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError as exc:  # an OpenSSL 3 build with the legacy provider switched off
        raise ConfigError(
            "this Python's OpenSSL has no RIPEMD-160, which Gonka addresses need",
            hint="enable OpenSSL's legacy provider, or use a Python build that has it",
        ) from exc


def address_from_public_key(public_key: bytes) -> str:
    """The ``gonka1...`` address of a 33-byte compressed public key."""
    key_hash = _ripemd160(hashlib.sha256(public_key).digest())
    words = bech32.convertbits(key_hash, 8, 5)
    assert words is not None  # 8-to-5 with padding cannot fail
    return bech32.bech32_encode(HRP, words)


def parse_address(text: str) -> str:
    """Check a ``gonka1...`` address (checksum, prefix, 20-byte payload); return it."""
    candidate = text.strip()
    hrp, words = bech32.bech32_decode(candidate)
    if hrp is None or words is None:
        raise UsageError(
            f"{candidate!r} is not a valid bech32 address (bad checksum or characters)"
        )
    if hrp != HRP:
        raise UsageError(
            f"address {candidate!r} has prefix {hrp!r}; Gonka addresses start with gonka1"
        )
    payload = bech32.convertbits(words, 5, 8, False)
    if payload is None or len(payload) != 20:
        raise UsageError(f"address {candidate!r} does not carry a 20-byte account hash")
    return candidate.lower()


def address_bytes(address: str) -> bytes:
    """The 20-byte account hash inside a valid address."""
    _, words = bech32.bech32_decode(parse_address(address))
    assert words is not None
    payload = bech32.convertbits(words, 5, 8, False)
    assert payload is not None
    return bytes(payload)


def parse_public_key(text: str) -> bytes:
    """A 33-byte compressed public key from base64 (as the chain prints it) or hex (with
    or without ``0x``)."""
    candidate = text.strip()
    if candidate[:2].lower() == "0x" and _HEX.fullmatch(candidate[2:]):
        candidate = candidate[2:]  # never base64: "0x" + 66 hex digits would decode to 51 bytes
    raw: bytes | None = None
    if len(candidate) == 66 and _HEX.fullmatch(candidate):
        raw = bytes.fromhex(candidate)
    else:
        try:
            raw = base64.b64decode(candidate, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        raise UsageError("public key is neither base64 nor hex")
    if len(raw) != 33 or raw[0] not in (2, 3):
        raise UsageError(
            f"public key must be 33 bytes, compressed (02/03...); got {len(raw)} bytes"
        )
    try:
        coincurve.PublicKey(raw)
    except ValueError as exc:
        raise UsageError("public key is not a point on secp256k1") from exc
    return raw


def parse_private_key_hex(text: str) -> bytes:
    """32 secret bytes from hex, forgiving ``0x``, case and whitespace; never echoes it."""
    candidate = text.strip()
    if candidate[:2] in ("0x", "0X"):
        candidate = candidate[2:]
    if not _HEX.fullmatch(candidate):
        raise ConfigError("private key is not hexadecimal (expected 64 hex characters)")
    if len(candidate) != 64:
        raise ConfigError(f"private key must be 64 hex characters (32 bytes); got {len(candidate)}")
    return secret_from_bytes(bytes.fromhex(candidate))


def secret_from_bytes(secret: bytes) -> bytes:
    """Check that 32 bytes are a valid secp256k1 secret (0 < k < n)."""
    value = int.from_bytes(secret, "big")
    if len(secret) != 32 or not 0 < value < CURVE_ORDER:
        raise ConfigError("private key is out of range for secp256k1 (zero or not below the order)")
    return secret


@dataclass(frozen=True)
class SigningKey:
    """A private key with its public key and address; its repr never shows the secret."""

    secret: bytes = field(repr=False)
    _key: coincurve.PrivateKey = field(repr=False, compare=False)
    public_key: bytes
    address: str

    @classmethod
    def from_secret(cls, secret: bytes) -> SigningKey:
        """Build from 32 secret bytes (checked)."""
        key = coincurve.PrivateKey(secret_from_bytes(secret))
        public = key.public_key.format(compressed=True)
        return cls(secret, key, public, address_from_public_key(public))

    @classmethod
    def from_hex(cls, text: str) -> SigningKey:
        """Build from hex text in any of the forms users paste (see `parse_private_key_hex`)."""
        return cls.from_secret(parse_private_key_hex(text))

    @classmethod
    def from_mnemonic(
        cls, mnemonic: str, *, path: str = "m/44'/1200'/0'/0/0", passphrase: str = ""
    ) -> SigningKey:
        """Derive from BIP39 words as `inferenced keys add` does (Gonka's coin type 1200)."""
        from gonka_cli.keys.hd import check_mnemonic, secret_from_mnemonic  # `mnemonic` is heavy

        return cls.from_secret(secret_from_mnemonic(check_mnemonic(mnemonic), path, passphrase))

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key."""
        return cls.from_secret(coincurve.PrivateKey().secret)

    def to_hex(self) -> str:
        """The 64-character lowercase hex secret, as `inferenced keys export --unarmored-hex`."""
        return self.secret.hex()

    @property
    def public_key_b64(self) -> str:
        """The compressed public key in base64, as the chain shows it."""
        return base64.b64encode(self.public_key).decode()

    def sign_digest_recoverable(self, digest: bytes) -> bytes:
        """65 bytes r || s || recid over a 32-byte digest (RFC 6979 nonce, low-S)."""
        signature: bytes = self._key.sign_recoverable(digest, hasher=None)
        return signature
