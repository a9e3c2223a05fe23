"""The signed-message layouts of a Gonka request, signing and strict verification (pure).

docs/protocol.md section 1: the message is ``hex(sha256(body)) + timestamp + transfer_address``
(scheme ``hash``, current) or ``body + timestamp + transfer_address`` (scheme ``raw``,
nodes before v0.2.6); the timestamp is appended only when > 0. The digest is
SHA-256(message), the signature compact ``r || s`` in low-S form, base64 with padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

import coincurve

from gonka_cli.errors import UsageError
from gonka_cli.keys import CURVE_ORDER, SigningKey, address_from_public_key

HALF_ORDER = CURVE_ORDER // 2
SIGNATURE_B64_LENGTH = 88


class Scheme(StrEnum):
    """Which bytes are signed."""

    HASH = "hash"
    RAW = "raw"


def parse_scheme(value: Scheme | str) -> Scheme:
    """``hash`` or ``raw`` (as a `Scheme` or its name); anything else is a `UsageError`."""
    try:
        return Scheme(value)
    except ValueError:
        raise UsageError(f"scheme must be hash or raw; got {value!r}") from None


def build_message(body: bytes, timestamp_ns: int, transfer_address: str, scheme: Scheme) -> bytes:
    """The exact message of docs/protocol.md section 1 whose SHA-256 is signed."""
    head = hashlib.sha256(body).hexdigest().encode() if scheme is Scheme.HASH else body
    stamp = str(timestamp_ns).encode() if timestamp_ns > 0 else b""
    return head + stamp + transfer_address.encode()


def message_digest(body: bytes, timestamp_ns: int, transfer_address: str, scheme: Scheme) -> bytes:
    """SHA-256 of `build_message`: what the ECDSA signature covers."""
    return hashlib.sha256(build_message(body, timestamp_ns, transfer_address, scheme)).digest()


def sign(
    key: SigningKey,
    body: bytes,
    timestamp_ns: int,
    transfer_address: str,
    scheme: Scheme = Scheme.HASH,
) -> str:
    """The base64 signature (88 characters) a TA accepts for these exact bytes."""
    digest = message_digest(body, timestamp_ns, transfer_address, scheme)
    return base64.b64encode(key.sign_digest_recoverable(digest)[:64]).decode()


class SignatureProblem(ValueError):
    """Why a signature is not acceptable; the message is the reason shown to users."""


def decode_signature(signature_b64: str) -> tuple[int, int, bytes]:
    """Strictly decode a base64 compact signature into (r, s, 64 raw bytes)."""
    try:
        raw = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureProblem("signature is not valid base64") from exc
    if len(raw) != 64:
        raise SignatureProblem(f"signature must be 64 bytes (r||s); got {len(raw)}")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:], "big")
    if not 0 < r < CURVE_ORDER or not 0 < s < CURVE_ORDER:
        raise SignatureProblem("signature r or s is out of range")
    if s > HALF_ORDER:
        raise SignatureProblem("signature is in high-S form (the network accepts only low-S)")
    return r, s, raw


def _der(r: int, s: int) -> bytes:
    """DER encoding of (r, s), which is what libsecp256k1's verify takes through coincurve."""

    def integer(value: int) -> bytes:
        data = value.to_bytes((value.bit_length() + 8) // 8, "big")  # room for a sign bit
        return b"\x02" + bytes([len(data)]) + data

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def verify_with_public_key(
    public_key: bytes,
    signature_b64: str,
    body: bytes,
    timestamp_ns: int,
    transfer_address: str,
    scheme: Scheme = Scheme.HASH,
) -> None:
    """Raise `SignatureProblem` unless the signature is valid for this public key."""
    r, s, _ = decode_signature(signature_b64)
    digest = message_digest(body, timestamp_ns, transfer_address, scheme)
    if not coincurve.PublicKey(public_key).verify(_der(r, s), digest, hasher=None):
        raise SignatureProblem("signature does not match this public key and message")


def recover_public_keys(
    signature_b64: str,
    body: bytes,
    timestamp_ns: int,
    transfer_address: str,
    scheme: Scheme = Scheme.HASH,
) -> list[bytes]:
    """The compressed public keys that could have made this signature (recovery ids 0, 1)."""
    _, _, raw = decode_signature(signature_b64)
    digest = message_digest(body, timestamp_ns, transfer_address, scheme)
    keys: list[bytes] = []
    for recid in (0, 1):
        try:
            key = coincurve.PublicKey.from_signature_and_message(
                raw + bytes([recid]), digest, hasher=None
            )
        except ValueError:
            continue
        keys.append(key.format(compressed=True))
    return keys


def verify_with_address(
    address: str,
    signature_b64: str,
    body: bytes,
    timestamp_ns: int,
    transfer_address: str,
    scheme: Scheme = Scheme.HASH,
) -> bytes:
    """Check a signature against an address alone; return the signer's public key."""
    for public_key in recover_public_keys(
        signature_b64, body, timestamp_ns, transfer_address, scheme
    ):
        if address_from_public_key(public_key) == address:
            return public_key
    raise SignatureProblem(f"signature was not made by {address} for this message")


@dataclass
class NanoClock:
    """Wall-clock nanoseconds, strictly increasing within the process.

    Two calls in the same nanosecond still differ (the second is bumped by one), and
    since each value is ``max(wall clock + offset, previous + 1)`` it never drifts
    from the wall clock: it only runs ahead for as many nanoseconds as it was called
    within one. ``offset_ns`` corrects for a node whose clock differs from ours.
    """

    offset_ns: int = 0

    def __post_init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        """The next timestamp."""
        with self._lock:
            stamp = max(time.time_ns() + self.offset_ns, self._last + 1)
            self._last = stamp
            return stamp


CLOCK = NanoClock()


def signature_headers(
    signature_b64: str, requester_address: str, timestamp_ns: int
) -> dict[str, str]:
    """The headers of docs/protocol.md section 2 (never ``X-Transfer-Address``)."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": signature_b64,
        "X-Requester-Address": requester_address,
    }
    if timestamp_ns > 0:
        headers["X-Timestamp"] = str(timestamp_ns)
    return headers
