"""Keyring records and armor, as pure functions: against the Cosmos binaries' own bytes."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys import SigningKey, armor, records
from tests import keyring_reader as reader

FIXTURES = Path(__file__).parent / "fixtures" / "keyring"


def _record_bytes(path: Path) -> bytes:
    _, item = reader.open_token(path.read_text(), "test")
    return base64.b64decode(str(item["Data"]))


def test_written_records_are_byte_identical_to_the_cosmos_binarys() -> None:
    """The protobuf Record gonka writes for a key equals, byte for byte, the one a Cosmos SDK
    binary wrote for the same key (decrypted by the independent reader)."""
    data = _record_bytes(FIXTURES / "perpilize" / "keyring-test" / "validator.info")
    name, public_key, secret = reader.read_record(data)
    assert records.encode_protobuf(name, public_key, secret) == data
    decoded = records.decode(data)
    assert (decoded.name, decoded.public_key, decoded.secret) == (name, public_key, secret)


def test_amino_records_give_the_address_of_their_address_file() -> None:
    """Each amino LegacyInfo fixture's public key hashes to the name of its .address file,
    and its secret gives that public key."""
    folder = FIXTURES / "localorai" / "keyring-test"
    for info in sorted(folder.glob("*.info")):
        record = records.decode(_record_bytes(info))
        assert record.encoding == "amino"
        assert record.secret is not None
        assert (folder / f"{reader.address_hex(record.public_key)}.address").is_file()
        assert SigningKey.from_secret(record.secret).public_key == record.public_key


def test_ethsecp256k1_is_foreign() -> None:
    """A real ethermint record is refused, naming its type."""
    data = _record_bytes(FIXTURES / "berachain" / "keyring-test" / "validator.info")
    with pytest.raises(records.ForeignKey, match="ethsecp256k1"):
        records.decode(data)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    """Arbitrary bytes never raise anything but RecordError or ForeignKey."""
    with contextlib.suppress(records.RecordError, records.ForeignKey):
        records.decode(data)


def test_truncated_record_is_a_record_error() -> None:
    """Every truncation of a real record is refused (not misread as another key)."""
    data = _record_bytes(FIXTURES / "perpilize" / "keyring-test" / "validator.info")
    for end in range(len(data) - 1, 0, -7):
        with pytest.raises((records.RecordError, records.ForeignKey)):
            records.decode(data[:end])


def test_armor_checksum_and_headers() -> None:
    """An altered armored body fails its CRC-24 (bad input, exit 2); another kdf or key type
    is refused naming it (exit 7)."""
    text = (FIXTURES / "b9-checkers" / "alice-export.asc").read_text()
    altered = text.replace("7gttUkxk", "7gttUkxl")
    with pytest.raises(UsageError, match="checksum"):
        armor.decrypt(altered, "password")
    with pytest.raises(ConfigError, match="argon2"):
        armor.decrypt(text.replace("kdf: bcrypt", "kdf: argon2"), "password")
    with pytest.raises(ConfigError, match="eth_secp256k1"):
        armor.decrypt(text.replace("type: secp256k1", "type: eth_secp256k1"), "password")


def test_crc24_known_answer() -> None:
    """The OpenPGP CRC-24 of the real export's body is the checksum line it carries."""
    text = (FIXTURES / "b9-checkers" / "alice-export.asc").read_text().splitlines()
    body = base64.b64decode("".join(text[5:7]))
    assert base64.b64encode(armor.crc24(body).to_bytes(3, "big")).decode() == text[7][1:]
