"""The key records inside a Cosmos keyring entry (pure: no I/O).

Two encodings exist, and both are read:

- SDK 0.46 and later: protobuf ``cosmos.crypto.keyring.v1.Record`` -- 1 ``name``,
  2 ``pub_key`` (``google.protobuf.Any``: 1 type_url, 2 value), 3 ``local``
  {1 ``priv_key`` (Any)}, 4 ``ledger``, 5 ``multi``, 6 ``offline``. A secp256k1 key's
  Any value is the protobuf {1 key: bytes}.
- Older: amino ``LegacyInfo``: a varint length, a 4-byte type prefix, then 1 ``name``,
  2 ``pubkey`` (amino prefix ``eb5ae987``, length 33), 3 ``privkey`` (amino prefix
  ``e1b0f79b``, length 32), 4 ``algo``.

Protobuf here is the five lines it takes to read and write tags, varints and
length-delimited fields; the fixtures from real keyrings (tests/fixtures/keyring) pin it.
Only secp256k1 keys are accepted: any other type (ethsecp256k1, ed25519, a ledger or an
offline record) raises `ForeignKey` naming it, so that it is never misused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRIV_TYPE = "/cosmos.crypto.secp256k1.PrivKey"
PUB_TYPE = "/cosmos.crypto.secp256k1.PubKey"
AMINO_PRIV = bytes.fromhex("e1b0f79b")
AMINO_PUB = bytes.fromhex("eb5ae987")
AMINO_LOCAL_INFO = bytes.fromhex("0dad153d")
_RECORD_KINDS = {3: "local", 4: "ledger", 5: "multisig", 6: "offline"}


class RecordError(ValueError):
    """A record that cannot be read (truncated, malformed)."""


class ForeignKey(ValueError):
    """A well-formed record that holds no secp256k1 private key gonka can sign with."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Record:
    """A decoded keyring record: the name, the public key, the secret (if local secp256k1)."""

    name: str
    public_key: bytes
    secret: bytes | None = field(repr=False)
    encoding: str  # "protobuf" or "amino"
    kind: str = "local"  # what the record is, for messages ("ledger", "ethsecp256k1"...)


# ---- protobuf, the little that is needed --------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise RecordError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> dict[int, list[bytes | int]]:
    """Every field of a protobuf message: number -> values (bytes for length-delimited)."""
    found: dict[int, list[bytes | int]] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        value: bytes | int
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise RecordError("field runs past the end")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise RecordError("field runs past the end")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise RecordError(f"unsupported wire type {wire}")
        if number == 0:
            raise RecordError("field number 0")
        found.setdefault(number, []).append(value)
    return found


def _bytes_field(message: dict[int, list[bytes | int]], number: int) -> bytes | None:
    values = message.get(number)
    if not values:
        return None
    last = values[-1]
    if not isinstance(last, bytes):
        raise RecordError(f"field {number} is not length-delimited")
    return last


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field_bytes(number: int, value: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(value)) + value


# ---- protobuf Record ------------------------------------------------------------------------


def _any(data: bytes) -> tuple[str, bytes]:
    message = fields(data)
    type_url = (_bytes_field(message, 1) or b"").decode("utf-8", "replace")
    return type_url, _bytes_field(message, 2) or b""


def _key_in(value: bytes, size: int) -> bytes:
    key = _bytes_field(fields(value), 1)
    if key is None or len(key) != size:
        raise RecordError(f"the key is not {size} bytes")
    return key


def decode_protobuf(data: bytes) -> Record:
    """A ``cosmos.crypto.keyring.v1.Record``; ForeignKey if it is not a local secp256k1 key."""
    message = fields(data)
    name = (_bytes_field(message, 1) or b"").decode("utf-8", "replace")
    pub_any = _bytes_field(message, 2)
    if pub_any is None:
        raise RecordError("no public key")
    pub_type, pub_value = _any(pub_any)
    kinds = [kind for number, kind in _RECORD_KINDS.items() if number in message]
    if kinds != ["local"]:
        kind = kinds[0] if kinds else "keyless"
        raise ForeignKey(f"a {kind} record of {pub_type or 'unknown type'} (no private key here)")
    priv_any = _bytes_field(fields(_bytes_field(message, 3) or b""), 1)
    if priv_any is None:
        raise RecordError("the local record holds no private key")
    priv_type, priv_value = _any(priv_any)
    if priv_type != PRIV_TYPE or pub_type != PUB_TYPE:
        raise ForeignKey(priv_type if priv_type != PRIV_TYPE else pub_type)
    return Record(name, _key_in(pub_value, 33), _key_in(priv_value, 32), "protobuf")


def encode_protobuf(name: str, public_key: bytes, secret: bytes) -> bytes:
    """The protobuf Record that `inferenced keys add` writes for a local secp256k1 key."""
    pub_any = field_bytes(1, PUB_TYPE.encode()) + field_bytes(2, field_bytes(1, public_key))
    priv_any = field_bytes(1, PRIV_TYPE.encode()) + field_bytes(2, field_bytes(1, secret))
    return (
        field_bytes(1, name.encode())
        + field_bytes(2, pub_any)
        + field_bytes(3, field_bytes(1, priv_any))
    )


# ---- amino LegacyInfo -----------------------------------------------------------------------


def _amino_key(value: bytes, prefix: bytes, size: int, what: str) -> bytes:
    if len(value) < 5:
        raise RecordError(f"the amino {what} is truncated")
    if value[:4] != prefix:
        raise ForeignKey(f"an amino {what} of type prefix {value[:4].hex()}")
    if len(value) != 5 + size or value[4] != size:
        raise RecordError(f"the amino {what} is not {size} bytes")
    return value[5:]


def decode_amino(data: bytes) -> Record:
    """An amino ``LegacyInfo`` (length-prefixed); ForeignKey if not a local secp256k1 key."""
    size, pos = _varint(data, 0)
    body = data[pos:]
    if size != len(body) or len(body) < 4:
        raise RecordError("the amino length prefix does not match")
    prefix, message = body[:4], fields(body[4:])
    name = (_bytes_field(message, 1) or b"").decode("utf-8", "replace")
    pub = _bytes_field(message, 2)
    if pub is None:
        raise RecordError("no public key")
    public_key = _amino_key(pub, AMINO_PUB, 33, "public key")
    priv = _bytes_field(message, 3)
    if prefix != AMINO_LOCAL_INFO or priv is None:
        raise ForeignKey(f"an amino record of type prefix {prefix.hex()} (no private key here)")
    return Record(name, public_key, _amino_key(priv, AMINO_PRIV, 32, "private key"), "amino")


def amino_private_key(secret: bytes) -> bytes:
    """The amino encoding of a secp256k1 private key: prefix, length, 32 bytes."""
    return AMINO_PRIV + bytes([32]) + secret


def decode(data: bytes) -> Record:
    """A record in either encoding: amino starts with its length, protobuf with field 1."""
    if data[:1] == b"\x0a":
        return decode_protobuf(data)
    return decode_amino(data)
