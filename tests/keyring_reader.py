"""An independent reader and writer of the Cosmos keyring and armor formats, for tests.

Written from docs/protocol.md section 7 and the cosmos-sdk sources, sharing no code with
gonka_cli: what gonka writes is read back here, and what is written here gonka must read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import bcrypt
import nacl.secret
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

ALG = "PBES2-HS256+A128KW"


def _d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _kek(password: str, p2s: bytes, p2c: int) -> bytes:
    salt = ALG.encode() + b"\0" + p2s
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=16, salt=salt, iterations=p2c).derive(
        password.encode()
    )


def open_token(token: str, password: str) -> tuple[dict[str, object], dict[str, object]]:
    """(header, item) of a JWE keyring file."""
    head, wrapped, iv, body, tag = token.strip().split(".")
    header = json.loads(_d(head))
    assert header["alg"] == ALG
    assert header["enc"] == "A256GCM"
    cek = aes_key_unwrap(_kek(password, _d(header["p2s"]), header["p2c"]), _d(wrapped))
    item = json.loads(AESGCM(cek).decrypt(_d(iv), _d(body) + _d(tag), head.encode()))
    return header, item


def seal_token(item: dict[str, object], password: str) -> str:
    """A JWE keyring file holding `item`."""
    p2s, cek, iv = os.urandom(12), os.urandom(32), os.urandom(12)
    header = {"alg": ALG, "enc": "A256GCM", "p2c": 8192, "p2s": _e(p2s), "created": "now"}
    head = _e(json.dumps(header).encode())
    wrapped = aes_key_wrap(_kek(password, p2s, 8192), cek)
    sealed = AESGCM(cek).encrypt(iv, json.dumps(item).encode(), head.encode())
    return ".".join([head, _e(wrapped), _e(iv), _e(sealed[:-16]), _e(sealed[-16:])])


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 127) << shift
        shift += 7
        if b < 128:
            return value, i


def proto(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields only (all a Record uses), last one wins."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag, i = _varint(data, i)
        assert tag & 7 == 2, "only length-delimited fields expected"
        size, i = _varint(data, i)
        out[tag >> 3] = data[i : i + size]
        i += size
    return out


def _ld(number: int, value: bytes) -> bytes:
    assert len(value) < 128
    return bytes([number << 3 | 2, len(value)]) + value


def record(name: str, public_key: bytes, secret: bytes) -> bytes:
    """A protobuf keyring Record of a local secp256k1 key."""
    pub = _ld(1, b"/cosmos.crypto.secp256k1.PubKey") + _ld(2, _ld(1, public_key))
    priv = _ld(1, b"/cosmos.crypto.secp256k1.PrivKey") + _ld(2, _ld(1, secret))
    return _ld(1, name.encode()) + _ld(2, pub) + _ld(3, _ld(1, priv))


def read_record(data: bytes) -> tuple[str, bytes, bytes]:
    """(name, public key, secret) of a protobuf Record."""
    top = proto(data)
    pub_any, priv_any = proto(top[2]), proto(proto(top[3])[1])
    assert pub_any[1] == b"/cosmos.crypto.secp256k1.PubKey"
    assert priv_any[1] == b"/cosmos.crypto.secp256k1.PrivKey"
    return top[1].decode(), proto(pub_any[2])[1], proto(priv_any[2])[1]


def address_hex(public_key: bytes) -> str:
    """The 20 address bytes in hex, as `.address` files are named."""
    return hashlib.new("ripemd160", hashlib.sha256(public_key).digest()).hexdigest()


def item(key: str, data: bytes) -> dict[str, object]:
    """A keyring item as 99designs/keyring stores it."""
    return {"Key": key, "Data": base64.b64encode(data).decode(), "Label": "", "Description": ""}


def armor_secret(text: str, passphrase: str) -> bytes:
    """The 32-byte secret of an armored export."""
    lines = text.strip().splitlines()
    headers = dict(line.split(": ", 1) for line in lines[1 : lines.index("")])
    body = base64.b64decode("".join(lines[lines.index("") + 1 : -2]))
    salt = bytes.fromhex(headers["salt"])
    bsalt = (
        base64.b64encode(salt)
        .decode()
        .rstrip("=")
        .translate(
            str.maketrans(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            )
        )
    )
    hashed = bcrypt.hashpw(passphrase.encode(), f"$2a$12${bsalt[:22]}".encode())
    plain = nacl.secret.SecretBox(hashlib.sha256(hashed).digest()).decrypt(body)
    assert plain[:5] == bytes.fromhex("e1b0f79b20")
    return plain[5:]
