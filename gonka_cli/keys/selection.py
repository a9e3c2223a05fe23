"""Which private key signs: one documented order, in one place.

1. ``--key NAME|ADDRESS``: a key in the keystore (``gonka keys list``).
2. ``--account-address ADDRESS``: the stored key with that address (as `inferenced`);
   when no stored key has it, the sources below must give a key with that address.
3. ``$GONKA_PRIVATE_KEY``: the hex private key.
4. ``--private-key-file PATH``: a file holding the hex private key.
5. The default key (``gonka keys default NAME``; the first key added becomes it).

Then, if ``$GONKA_ADDRESS`` is set, it must be the chosen key's address: a mismatch is
a ConfigError here rather than a 401 from the network. Encrypted stored keys are
opened with ``--passphrase-file``, else ``$GONKA_KEYRING_PASSPHRASE``, else a hidden
prompt asked once per process. The keystore, `cryptography` and `mnemonic` are
imported only on the paths that open a stored key, so ``gonka sign`` with
``GONKA_PRIVATE_KEY`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys.material import SigningKey, parse_address

if TYPE_CHECKING:
    from gonka_cli.keys.keystore import StoredKey

ENV_PRIVATE_KEY = "GONKA_PRIVATE_KEY"
ENV_ADDRESS = "GONKA_ADDRESS"
NO_KEY_HINT = (
    "pass --key NAME (see `gonka keys list`) or --account-address ADDR, set "
    f"{ENV_PRIVATE_KEY} to a hex private key, pass --private-key-file PATH, "
    "or create a default key with `gonka keys add NAME`"
)


def resolve_signing_key(
    *,
    key: str | None = None,
    account_address: str | None = None,
    private_key_file: str | None = None,
    passphrase_file: str | None = None,
) -> SigningKey:
    """The signing key, chosen in the documented order and checked against $GONKA_ADDRESS."""
    wanted = _address_option(account_address)
    chosen = _choose(key, wanted, private_key_file)
    # Addresses are checked before a stored key is opened: no prompt for the wrong key.
    _check_address(chosen.address, wanted, "--account-address")
    _check_address(chosen.address, _expected_address(), f"${ENV_ADDRESS}")
    return chosen if isinstance(chosen, SigningKey) else _unlock(chosen, passphrase_file)


def signing_key_configured(
    *,
    key: str | None = None,
    account_address: str | None = None,
    private_key_file: str | None = None,
) -> bool:
    """Whether some signing key is configured; cheap (no file is decrypted, nothing asked)."""
    if key or account_address or private_key_file or os.environ.get(ENV_PRIVATE_KEY):
        return True
    from gonka_cli.keys.keystore import Keystore

    return Keystore.default().has_default()


def _address_option(account_address: str | None) -> str | None:
    if not account_address:
        return None
    try:
        return parse_address(account_address)
    except UsageError as exc:
        raise UsageError(f"--account-address: {exc.message}") from None


def _expected_address() -> str | None:
    value = os.environ.get(ENV_ADDRESS, "").strip()
    if not value:
        return None
    try:
        return parse_address(value)
    except UsageError as exc:
        raise ConfigError(f"${ENV_ADDRESS}: {exc.message}") from None


def _check_address(actual: str, wanted: str | None, origin: str) -> None:
    if wanted and actual != wanted:
        raise ConfigError(
            f"{origin} is {wanted} but the signing key's address is {actual}",
            hint=f"choose the key with that address, or fix or unset {origin}",
        )


def _choose(
    key: str | None, wanted: str | None, private_key_file: str | None
) -> SigningKey | StoredKey:
    if key or wanted:
        from gonka_cli.keys.keystore import Keystore

        store = Keystore.default()
        stored = store.find(key) if key else store.find_by_address(str(wanted))
        if stored is not None:
            return stored
    env_value = os.environ.get(ENV_PRIVATE_KEY)
    if env_value:
        return _parse(env_value, f"${ENV_PRIVATE_KEY}")
    if private_key_file:
        return _parse(_read_key_file(Path(private_key_file)), private_key_file)
    if wanted:
        raise ConfigError(f"no stored key has the address {wanted}", hint="see `gonka keys list`")
    return _default_key()


def _default_key() -> StoredKey:
    from gonka_cli.keys.keystore import Keystore

    store = Keystore.default()
    default = store.default_name()
    if default is None:
        raise ConfigError("no signing key is configured", hint=NO_KEY_HINT)
    return store.load(default)


def _unlock(stored: StoredKey, passphrase_file: str | None) -> SigningKey:
    from gonka_cli.keys import keystore

    if stored.encrypted:
        passphrase = keystore.passphrase_to_open(stored.name, passphrase_file)
        return SigningKey.from_secret(keystore.open_key(stored, passphrase).secret)
    sys.stderr.write(f"warning: {keystore.unencrypted_warning(stored)}\n")
    return SigningKey.from_secret(keystore.open_key(stored, None).secret)


def _parse(text: str, source: str) -> SigningKey:
    try:
        return SigningKey.from_hex(text)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise UsageError(f"{path}: cannot read the key file ({reason})") from None
