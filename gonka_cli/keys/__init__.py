"""Everything about keys, in one package.

- `material`: private keys, public keys and ``gonka1...`` addresses (pure); its names are
  re-exported here, so ``from gonka_cli.keys import SigningKey, parse_address`` works.
- `hd`: BIP39 mnemonics and BIP32 derivation.
- `keystore`: gonka's own encrypted key files, and where passphrases come from.
- `keyring`: the Cosmos SDK keyring that `inferenced` keeps (``test`` and ``file``).
- `armor`: the armored private-key export of `inferenced keys export`.
- `selection`: which key signs: one order over a list of key sources.

Only `material` is imported here: `gonka sign` must not pay for `cryptography`,
`mnemonic`, `bcrypt` or `nacl` unless the key it uses needs them.
"""

from gonka_cli.keys.material import (
    CURVE_ORDER,
    HRP,
    SigningKey,
    address_bytes,
    address_from_public_key,
    parse_address,
    parse_private_key_hex,
    parse_public_key,
    secret_from_bytes,
)

__all__ = [
    "CURVE_ORDER",
    "HRP",
    "SigningKey",
    "address_bytes",
    "address_from_public_key",
    "parse_address",
    "parse_private_key_hex",
    "parse_public_key",
    "secret_from_bytes",
]
