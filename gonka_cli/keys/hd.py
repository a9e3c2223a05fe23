"""BIP39 mnemonics and BIP32 derivation of secp256k1 keys (pure: no I/O).

`inferenced keys add` makes a 24-word BIP39 mnemonic, stretches it into a 64-byte seed
(empty BIP39 passphrase by default) and derives the account key at ``m/44'/1200'/0'/0/0``
(docs/protocol.md section 7). The `mnemonic` package supplies the word list, checksum and
seed. The BIP32 private derivation is written out here (HMAC-SHA512 and a scalar
addition mod n, coincurve for the parent public key) because the `bip32` package pins
coincurve below 21; the official BIP32 test vectors pin this code down.
No error raised here quotes the words it was given.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import coincurve

from gonka_cli.errors import UsageError
from gonka_cli.keys.material import CURVE_ORDER

if TYPE_CHECKING:
    from mnemonic import Mnemonic

HARDENED = 0x8000_0000
GONKA_COIN_TYPE = 1200
COSMOS_COIN_TYPE = 118
MNEMONIC_LENGTHS = (12, 15, 18, 21, 24)
_STRENGTH_BITS = {12: 128, 15: 160, 18: 192, 21: 224, 24: 256}
_PATH_STEP = re.compile(r"(\d+)(['hH]?)")


def bip44_path(coin_type: int = GONKA_COIN_TYPE, account: int = 0, index: int = 0) -> str:
    """The BIP44 path ``m/44'/coin'/account'/0/index`` that `inferenced keys add` uses."""
    for label, value in (("coin type", coin_type), ("account", account), ("index", index)):
        if not 0 <= value < HARDENED:
            raise UsageError(f"{label} must be between 0 and {HARDENED - 1}; got {value}")
    return f"m/44'/{coin_type}'/{account}'/0/{index}"


DEFAULT_PATH = bip44_path()


def parse_path(path: str) -> tuple[int, ...]:
    """The child indexes of a path like ``m/44'/1200'/0'/0/0`` (``'``, h or H: hardened)."""
    steps = path.strip().split("/")
    if steps[0] in ("m", "M"):
        steps = steps[1:]
    indexes: list[int] = []
    for step in steps:
        match = _PATH_STEP.fullmatch(step)
        if match is None or int(match.group(1)) >= HARDENED:
            raise UsageError(
                f"HD path {path!r} is not of the form m/44'/1200'/0'/0/0",
                hint="each step is a number below 2^31, followed by ' when hardened",
            )
        indexes.append(int(match.group(1)) + (HARDENED if match.group(2) else 0))
    return tuple(indexes)


@cache
def _english() -> Mnemonic:
    # Imported here: loading the word list costs time that `gonka sign` must not pay.
    from mnemonic import Mnemonic

    return Mnemonic("english")


def normalize_mnemonic(text: str) -> str:
    """NFKD, lower case, single spaces: the form BIP39 hashes."""
    return " ".join(unicodedata.normalize("NFKD", text).lower().split())


def check_mnemonic(text: str) -> str:
    """The normalized mnemonic if valid BIP39 English; else what is wrong (never the words)."""
    words = normalize_mnemonic(text).split(" ") if text.strip() else []
    if len(words) not in MNEMONIC_LENGTHS:
        raise UsageError(
            f"the mnemonic has {len(words)} words; a BIP39 mnemonic has 12, 15, 18, 21 or 24"
        )
    known = set(_english().wordlist)
    unknown = [str(position) for position, word in enumerate(words, 1) if word not in known]
    if unknown:
        which = f"words {', '.join(unknown)} are" if len(unknown) > 1 else f"word {unknown[0]} is"
        raise UsageError(f"{which} not in the BIP39 English word list")
    mnemonic = " ".join(words)
    if not _english().check(mnemonic):
        raise UsageError(
            "the mnemonic's checksum does not match: a word is wrong, missing or out of order"
        )
    return mnemonic


def generate_mnemonic(words: int = 24) -> str:
    """A fresh random BIP39 English mnemonic (24 words, as `inferenced keys add`)."""
    if words not in _STRENGTH_BITS:
        raise UsageError(f"a mnemonic has 12, 15, 18, 21 or 24 words; not {words}")
    return _english().generate(strength=_STRENGTH_BITS[words])


def mnemonic_to_seed(mnemonic: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP39 seed (PBKDF2-HMAC-SHA512, 2048 rounds) of a checked mnemonic."""
    from mnemonic import Mnemonic

    seed: bytes = Mnemonic.to_seed(check_mnemonic(mnemonic), passphrase)
    return seed


@dataclass(frozen=True)
class ExtendedKey:
    """A BIP32 extended private key: the secret and its chain code (never shown in repr)."""

    secret: bytes = field(repr=False)
    chain_code: bytes = field(repr=False)

    @property
    def public_key(self) -> bytes:
        """The 33-byte compressed public key."""
        public: bytes = coincurve.PublicKey.from_secret(self.secret).format(compressed=True)
        return public


def _split(key: bytes, data: bytes) -> tuple[int, bytes]:
    digest = hmac.new(key, data, hashlib.sha512).digest()
    return int.from_bytes(digest[:32], "big"), digest[32:]


def master_key(seed: bytes) -> ExtendedKey:
    """The BIP32 master key of a seed: HMAC-SHA512 keyed with "Bitcoin seed"."""
    scalar, chain_code = _split(b"Bitcoin seed", seed)
    if not 0 < scalar < CURVE_ORDER:
        raise UsageError("this seed gives an invalid BIP32 master key; use another mnemonic")
    return ExtendedKey(scalar.to_bytes(32, "big"), chain_code)


def derive_child(parent: ExtendedKey, index: int) -> ExtendedKey:
    """CKDpriv: the child private key at `index` (>= 2^31 means hardened)."""
    if index >= HARDENED:
        data = b"\x00" + parent.secret + index.to_bytes(4, "big")
    else:
        data = parent.public_key + index.to_bytes(4, "big")
    tweak, chain_code = _split(parent.chain_code, data)
    child = (tweak + int.from_bytes(parent.secret, "big")) % CURVE_ORDER
    if tweak >= CURVE_ORDER or child == 0:  # probability below 2^-127, but the spec says so
        raise UsageError(f"BIP32 child {index} is invalid for this seed; use another index")
    return ExtendedKey(child.to_bytes(32, "big"), chain_code)


def derive_path(seed: bytes, path: str) -> ExtendedKey:
    """The extended key at `path` below the master key of `seed`."""
    key = master_key(seed)
    for index in parse_path(path):
        key = derive_child(key, index)
    return key


def secret_from_mnemonic(mnemonic: str, path: str = DEFAULT_PATH, passphrase: str = "") -> bytes:
    """The 32-byte private key that `inferenced` derives from these words at `path`."""
    return derive_path(mnemonic_to_seed(mnemonic, passphrase), path).secret
