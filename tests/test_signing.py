"""The signed-message layouts, signing and strict verification."""

from __future__ import annotations

import base64
import hashlib
import threading

import pytest
from ecdsa import SECP256k1
from ecdsa import SigningKey as EcdsaSigningKey
from ecdsa.util import sigencode_string_canonize
from hypothesis import given, settings
from hypothesis import strategies as st

from gonka_cli.keys import CURVE_ORDER, SigningKey, address_from_public_key
from gonka_cli.signing import (
    NanoClock,
    Scheme,
    SignatureProblem,
    build_message,
    decode_signature,
    recover_public_keys,
    sign,
    signature_headers,
    verify_with_address,
    verify_with_public_key,
)
from tests import vectors as v

KEY = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
secrets = st.integers(min_value=1, max_value=CURVE_ORDER - 1).map(lambda n: n.to_bytes(32, "big"))
stamps = st.integers(min_value=0, max_value=2**63 - 1)
addresses = st.binary(min_size=33, max_size=33).map(lambda b: address_from_public_key(b))


def test_body_hash_vector() -> None:
    """The body's SHA-256 is the published one, and the hash layout starts with its hex."""
    assert hashlib.sha256(v.BODY).hexdigest() == v.BODY_SHA256
    message = build_message(v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS, Scheme.HASH)
    assert message == (v.BODY_SHA256 + str(v.TIMESTAMP) + v.TRANSFER_ADDRESS).encode()


def test_hash_scheme_vector() -> None:
    """Signing the section 8 inputs with the hash layout gives the published signature."""
    assert sign(KEY, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS, Scheme.HASH) == v.SIG_HASH


def test_raw_scheme_vector() -> None:
    """Signing the section 8 inputs with the raw layout gives the published signature."""
    assert sign(KEY, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS, Scheme.RAW) == v.SIG_RAW


@pytest.mark.parametrize(("scheme", "sig"), [(Scheme.HASH, v.SIG_HASH), (Scheme.RAW, v.SIG_RAW)])
def test_vectors_verify_by_key_and_address(scheme: Scheme, sig: str) -> None:
    """The published signatures verify against the public key and against the address."""
    verify_with_public_key(KEY.public_key, sig, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS, scheme)
    found = verify_with_address(
        v.PRIVATE_KEY_ADDRESS, sig, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS, scheme
    )
    assert found == KEY.public_key


def test_high_s_twin_is_rejected() -> None:
    """The high-S form of a valid signature is refused, by key and by address."""
    with pytest.raises(SignatureProblem, match="high-S"):
        verify_with_public_key(
            KEY.public_key, v.SIG_HASH_HIGH_S, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS
        )
    with pytest.raises(SignatureProblem, match="high-S"):
        verify_with_address(
            v.PRIVATE_KEY_ADDRESS, v.SIG_HASH_HIGH_S, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS
        )


def test_signature_is_88_base64_characters() -> None:
    """Every signature is standard base64 of 64 bytes: 88 characters with padding."""
    assert len(v.SIG_HASH) == 88
    assert len(sign(KEY, b"x", 1, "")) == 88


def test_timestamp_zero_and_empty_address_append_nothing() -> None:
    """raw with no timestamp and no address signs the payload alone."""
    assert build_message(b"payload", 0, "", Scheme.RAW) == b"payload"
    assert build_message(b"payload", 5, "", Scheme.RAW) == b"payload5"


@pytest.mark.parametrize(
    ("signature", "needle"),
    [
        ("not base64!", "base64"),
        (base64.b64encode(bytes(63)).decode(), "64 bytes"),
        (base64.b64encode(bytes(65)).decode(), "64 bytes"),
        (base64.b64encode(bytes(64)).decode(), "out of range"),
        (
            base64.b64encode(CURVE_ORDER.to_bytes(32, "big") + (1).to_bytes(32, "big")).decode(),
            "out of range",
        ),
    ],
)
def test_malformed_signatures(signature: str, needle: str) -> None:
    """Bad base64, wrong lengths and out-of-range r or s are refused with the reason."""
    with pytest.raises(SignatureProblem, match=needle):
        decode_signature(signature)


@pytest.mark.parametrize(
    ("body", "stamp", "transfer"),
    [
        (v.BODY + b" ", v.TIMESTAMP, v.TRANSFER_ADDRESS),
        (v.BODY, v.TIMESTAMP + 1, v.TRANSFER_ADDRESS),
        (v.BODY, v.TIMESTAMP, v.PRIVATE_KEY_ADDRESS),
    ],
)
def test_changed_inputs_do_not_verify(body: bytes, stamp: int, transfer: str) -> None:
    """A changed body, timestamp or transfer address breaks the published signature."""
    with pytest.raises(SignatureProblem):
        verify_with_address(v.PRIVATE_KEY_ADDRESS, v.SIG_HASH, body, stamp, transfer)


def test_wrong_address_does_not_verify() -> None:
    """A valid signature does not verify for another signer's address."""
    with pytest.raises(SignatureProblem, match="not made by"):
        verify_with_address(v.PUBKEY_ADDRESS, v.SIG_HASH, v.BODY, v.TIMESTAMP, v.TRANSFER_ADDRESS)


def test_headers_follow_protocol() -> None:
    """Headers carry the bare signature, requester and timestamp, and no transfer address."""
    headers = signature_headers(v.SIG_HASH, v.PRIVATE_KEY_ADDRESS, v.TIMESTAMP)
    assert headers == {
        "Content-Type": "application/json",
        "Authorization": v.SIG_HASH,
        "X-Requester-Address": v.PRIVATE_KEY_ADDRESS,
        "X-Timestamp": str(v.TIMESTAMP),
    }


@settings(max_examples=60, deadline=None)
@given(secrets, st.binary(max_size=512), stamps, addresses, st.sampled_from(list(Scheme)))
def test_sign_verify_round_trip(
    secret: bytes, body: bytes, stamp: int, transfer: str, scheme: Scheme
) -> None:
    """For random keys and inputs, a signature verifies and its recovered key is the signer's."""
    key = SigningKey.from_secret(secret)
    signature = sign(key, body, stamp, transfer, scheme)
    verify_with_public_key(key.public_key, signature, body, stamp, transfer, scheme)
    assert key.public_key in recover_public_keys(signature, body, stamp, transfer, scheme)
    _, s, _ = decode_signature(signature)
    assert s <= CURVE_ORDER // 2


@settings(max_examples=60, deadline=None)
@given(secrets, st.binary(min_size=1, max_size=256), stamps, addresses, st.data())
def test_any_flipped_byte_breaks_verification(
    secret: bytes, body: bytes, stamp: int, transfer: str, data: st.DataObject
) -> None:
    """Flipping any byte of the body, or changing the timestamp or address, fails verification."""
    key = SigningKey.from_secret(secret)
    signature = sign(key, body, stamp, transfer)
    index = data.draw(st.integers(0, len(body) - 1))
    flipped = body[:index] + bytes([body[index] ^ 0xFF]) + body[index + 1 :]
    other = data.draw(addresses.filter(lambda a: a != transfer))
    for args in ((flipped, stamp, transfer), (body, stamp + 1, transfer), (body, stamp, other)):
        with pytest.raises(SignatureProblem):
            verify_with_address(key.address, signature, *args)


@settings(max_examples=60, deadline=None)
@given(secrets, st.binary(max_size=512), stamps, addresses, st.sampled_from(list(Scheme)))
def test_equals_python_ecdsa_reference(
    secret: bytes, body: bytes, stamp: int, transfer: str, scheme: Scheme
) -> None:
    """Our signatures equal python-ecdsa's RFC 6979 low-S signatures byte for byte."""
    reference = EcdsaSigningKey.from_string(secret, curve=SECP256k1, hashfunc=hashlib.sha256)
    message = build_message(body, stamp, transfer, scheme)
    expected = reference.sign_deterministic(message, sigencode=sigencode_string_canonize)
    assert (
        sign(SigningKey.from_secret(secret), body, stamp, transfer, scheme)
        == base64.b64encode(expected).decode()
    )


def test_clock_is_strictly_increasing_across_threads() -> None:
    """Timestamps never repeat, even when many threads ask in the same nanosecond."""
    clock = NanoClock()
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        local = [clock.now_ns() for _ in range(2000)]
        with lock:
            seen.extend(local)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == len(seen) == 8000


def test_clock_tracks_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock follows the wall clock and its offset; bumps never accumulate into drift."""
    import gonka_cli.signing as signing

    now = [1_000_000]
    monkeypatch.setattr(signing.time, "time_ns", lambda: now[0])
    clock = NanoClock(offset_ns=500)
    assert [clock.now_ns() for _ in range(3)] == [1_000_500, 1_000_501, 1_000_502]
    now[0] = 2_000_000
    assert clock.now_ns() == 2_000_500
