"""Private keys, public keys and addresses."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys import (
    CURVE_ORDER,
    SigningKey,
    address_bytes,
    address_from_public_key,
    parse_address,
    parse_private_key_hex,
    parse_public_key,
)
from tests import vectors as v


def test_address_of_protocol_public_key() -> None:
    """The section 8 public key maps to its published address."""
    assert address_from_public_key(base64.b64decode(v.PUBKEY_B64)) == v.PUBKEY_ADDRESS


def test_private_key_vector() -> None:
    """The section 8 private key has the published public key and address."""
    key = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
    assert key.public_key_b64 == v.PRIVATE_KEY_PUBKEY_B64
    assert key.address == v.PRIVATE_KEY_ADDRESS
    assert len(key.address) == 44


@pytest.mark.parametrize(
    "text",
    [
        v.PRIVATE_KEY_HEX,
        "0x" + v.PRIVATE_KEY_HEX,
        "0X" + v.PRIVATE_KEY_HEX.upper(),
        "  " + v.PRIVATE_KEY_HEX + "\n",
        v.PRIVATE_KEY_HEX.upper() + "\r\n",
    ],
)
def test_private_key_forms_users_paste(text: str) -> None:
    """0x prefixes, case and surrounding whitespace are accepted."""
    assert SigningKey.from_hex(text).address == v.PRIVATE_KEY_ADDRESS


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (v.PRIVATE_KEY_HEX[:-2], "64 hex characters"),
        (v.PRIVATE_KEY_HEX + "00", "64 hex characters"),
        ("zz" + v.PRIVATE_KEY_HEX[2:], "not hexadecimal"),
        ("00" * 32, "out of range"),
        (f"{CURVE_ORDER:064x}", "out of range"),
        (f"{CURVE_ORDER + 5:064x}", "out of range"),
        ("", "64 hex characters"),
    ],
)
def test_bad_private_keys_are_refused_without_echo(text: str, needle: str) -> None:
    """Wrong length, non-hex, zero and >= n are refused, and the message never shows the key."""
    with pytest.raises(ConfigError) as info:
        parse_private_key_hex(text)
    assert needle in info.value.message
    if len(text) > 8:
        assert text[4:-4] not in info.value.message


def test_repr_hides_secret() -> None:
    """A key's repr and str never contain its secret."""
    key = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
    assert v.PRIVATE_KEY_HEX not in repr(key)
    assert v.PRIVATE_KEY_HEX not in str(key)
    assert key.to_hex() == v.PRIVATE_KEY_HEX


def test_parse_address_accepts_valid_and_uppercase() -> None:
    """A valid address parses, also in upper case (bech32 allows one case)."""
    assert parse_address(v.PUBKEY_ADDRESS) == v.PUBKEY_ADDRESS
    assert parse_address(v.PUBKEY_ADDRESS.upper()) == v.PUBKEY_ADDRESS
    assert len(address_bytes(v.PUBKEY_ADDRESS)) == 20


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (v.PUBKEY_ADDRESS[:-1] + "n", "checksum"),
        ("cosmos1jwrv4q8hpxc354pr87pt0pkulaep67e9s4z0ym", "checksum"),
        ("not an address", "checksum"),
    ],
)
def test_parse_address_rejects(text: str, needle: str) -> None:
    """Bad checksums and foreign strings are usage errors."""
    with pytest.raises(UsageError) as info:
        parse_address(text)
    assert needle in info.value.message


def test_parse_address_rejects_other_prefix() -> None:
    """A valid bech32 string with another prefix is refused with the prefix named."""
    import bech32

    other = bech32.bech32_encode("cosmos", bech32.convertbits(bytes(20), 8, 5) or [])
    with pytest.raises(UsageError, match="prefix 'cosmos'"):
        parse_address(other)


def test_parse_address_rejects_wrong_payload_length() -> None:
    """A gonka address whose payload is not 20 bytes is refused."""
    import bech32

    short = bech32.bech32_encode("gonka", bech32.convertbits(bytes(19), 8, 5) or [])
    with pytest.raises(UsageError, match="20-byte"):
        parse_address(short)


def test_parse_public_key_base64_and_hex() -> None:
    """A compressed public key parses from base64 and from hex."""
    raw = base64.b64decode(v.PUBKEY_B64)
    assert parse_public_key(v.PUBKEY_B64) == raw
    assert parse_public_key(raw.hex()) == raw


@pytest.mark.parametrize(
    "text",
    ["!!!", base64.b64encode(b"\x02" + bytes(31)).decode(), "04" + "11" * 64, "05" + "11" * 32],
)
def test_parse_public_key_rejects(text: str) -> None:
    """Garbage, wrong lengths, uncompressed and off-curve keys are refused."""
    with pytest.raises(UsageError):
        parse_public_key(text)


@given(st.binary(min_size=32, max_size=32))
def test_random_keys_round_trip_hex(secret: bytes) -> None:
    """Any valid secret survives the hex round trip and gives a 44-character address."""
    value = int.from_bytes(secret, "big")
    if not 0 < value < CURVE_ORDER:
        with pytest.raises(ConfigError):
            SigningKey.from_secret(secret)
        return
    key = SigningKey.from_secret(secret)
    again = SigningKey.from_hex(key.to_hex())
    assert again.address == key.address
    assert parse_address(key.address) == key.address
