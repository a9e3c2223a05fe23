"""Which private key signs: one documented order, over a list of key sources.

1. ``--key NAME|ADDRESS`` (or ``--from NAME``, the `inferenced` spelling): the first key
   source that has that name or address.
2. ``--account-address ADDRESS``: the first key source that has that address; when none
   has it, the sources below must give a key with that address.
3. ``$GONKA_PRIVATE_KEY``: the hex private key.
4. ``--private-key-file PATH``: a file holding the hex private key.
5. The default key of gonka's keystore (``gonka keys default NAME``).

The key sources, in order: gonka's keystore (``<gonka home>/keys``), then `inferenced`'s
``test`` keyring (``<keyring dir>/keyring-test``, see `gonka_cli.keys.keyring`). With
``--keyring-backend test|file`` (or ``$GONKA_KEYRING_BACKEND``) the one source is that
keyring, and a key must be chosen in it with --key, --from or --account-address.
Each source answers one question, "do you have NAME or ADDRESS?", with the key's name
and address before anything is decrypted; adding a source (an OS keychain, a hardware
wallet) is one more entry in `key_sources`.

Then, if ``$GONKA_ADDRESS`` is set, it must be the chosen key's address: a mismatch is
a ConfigError here rather than a 401 from the network. Passphrases come from
``--passphrase-file``, else ``$GONKA_KEYRING_PASSPHRASE``, else a hidden prompt asked
once per process. The keystore, the keyring, `cryptography` and `mnemonic` are imported
only on the paths that open a stored key, so ``gonka sign`` with ``GONKA_PRIVATE_KEY``
stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys.material import SigningKey, parse_address

if TYPE_CHECKING:
    from gonka_cli.keys.keyring import Keyring
    from gonka_cli.keys.keystore import Keystore, StoredKey

ENV_PRIVATE_KEY = "GONKA_PRIVATE_KEY"
ENV_ADDRESS = "GONKA_ADDRESS"
ENV_BACKEND = "GONKA_KEYRING_BACKEND"  # here, not in keyring.py: `gonka sign` never loads that
NO_KEY_HINT = (
    "pass --key NAME (see `gonka keys list`) or --account-address ADDR, set "
    f"{ENV_PRIVATE_KEY} to a hex private key, pass --private-key-file PATH, "
    "or create a default key with `gonka keys add NAME`"
)


@dataclass(frozen=True)
class KeyringChoice:
    """The keyring flags: --keyring-backend, --keyring-dir, --home."""

    backend: str | None = None
    keyring_dir: str | None = None
    home: str | None = None

    def chosen_backend(self) -> str | None:
        """--keyring-backend, else $GONKA_KEYRING_BACKEND, else None (no keyring chosen)."""
        return self.backend or os.environ.get(ENV_BACKEND) or None

    def base(self) -> Path:
        """The keyring directory (see `gonka_cli.keys.keyring.keyring_dir`)."""
        from gonka_cli.keys.keyring import keyring_dir

        return keyring_dir(self.keyring_dir, self.home)


@dataclass(frozen=True)
class Found:
    """A key a source has: its name and address (known before decrypting), and the opener."""

    name: str
    address: str
    origin: str
    opener: Callable[[], SigningKey] = field(repr=False, compare=False)
    note: bool = False  # say on stderr where the key came from

    def open(self) -> SigningKey:
        """The signing key (may ask for a passphrase)."""
        return self.opener()


class KeySource(Protocol):
    """Anything that can answer "do you have NAME or ADDRESS?"."""

    label: str

    def find(self, wanted: str) -> Found | None:
        """The key called `wanted`, or with that ``gonka1`` address; None when absent."""


class StoreSource:
    """gonka's own keystore."""

    def __init__(self, store: Keystore, passphrase_file: str | None) -> None:
        self.store = store
        self.passphrase_file = passphrase_file
        self.label = f"the gonka keystore {store.directory}"

    def find(self, wanted: str) -> Found | None:
        """The stored key with this name or address (a corrupt file is an error)."""
        from gonka_cli.keys.keystore import looks_like_a_key

        if wanted.lower().startswith("gonka1"):
            stored = self.store.find_by_address(wanted)
        elif looks_like_a_key(wanted):
            self.store.path_for(wanted)  # refuses, without echoing it, a secret given as a name
            stored = None
        elif self.store.valid_name(wanted) and self.store.path_for(wanted).exists():
            stored = self.store.load(wanted)
        else:
            stored = None
        if stored is None:
            return None
        chosen, store, passphrase_file = stored, self.store, self.passphrase_file
        return Found(
            stored.name, stored.address, self.label, lambda: _unlock(store, chosen, passphrase_file)
        )


class KeyringSource:
    """One backend of `inferenced`'s keyring."""

    def __init__(self, keyring: Keyring, *, note: bool = True) -> None:
        self.keyring = keyring
        self.label = keyring.label
        self.note = note

    def find(self, wanted: str) -> Found | None:
        """The keyring entry with this name or address (decrypts the entry)."""
        if not self.keyring.exists():
            return None
        entry = self.keyring.find(wanted)
        if entry is None:
            return None
        return Found(entry.name, entry.address, self.label, entry.signing_key, note=self.note)


def key_sources(choice: KeyringChoice, passphrase_file: str | None = None) -> list[KeySource]:
    """The sources asked for a key by name or address, in order."""
    from gonka_cli.keys.keyring import Keyring

    backend = choice.chosen_backend()
    if backend:
        return [KeyringSource(Keyring(backend, choice.base(), passphrase_file=passphrase_file))]
    from gonka_cli.keys.keystore import Keystore

    return [
        StoreSource(Keystore.default(), passphrase_file),
        KeyringSource(Keyring("test", choice.base())),
    ]


def resolve_signing_key(
    *,
    key: str | None = None,
    account_address: str | None = None,
    private_key_file: str | None = None,
    passphrase_file: str | None = None,
    from_name: str | None = None,
    keyring: KeyringChoice | None = None,
) -> SigningKey:
    """The signing key, chosen in the documented order and checked against $GONKA_ADDRESS."""
    if key and from_name:
        raise UsageError("pass only one of --key and --from")
    choice = keyring or KeyringChoice()
    wanted = _address_option(account_address)
    chosen = _choose(key or from_name, wanted, private_key_file, choice, passphrase_file)
    # Addresses are checked before a stored key is opened: no prompt for the wrong key.
    _check_address(chosen.address, wanted, "--account-address")
    _check_address(chosen.address, _expected_address(), f"${ENV_ADDRESS}")
    if isinstance(chosen, SigningKey):
        return chosen
    if chosen.note:
        sys.stderr.write(f"using key {chosen.name!r} ({chosen.address}) from {chosen.origin}\n")
    return chosen.open()


def signing_key_configured(
    *,
    key: str | None = None,
    account_address: str | None = None,
    private_key_file: str | None = None,
    from_name: str | None = None,
) -> bool:
    """Whether some signing key is configured; cheap (no file is decrypted, nothing asked)."""
    if key or from_name or account_address or private_key_file:
        return True
    if os.environ.get(ENV_PRIVATE_KEY):
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


def find_key(wanted: str, sources: list[KeySource]) -> Found | None:
    """The first source's answer for a name or an address."""
    for source in sources:
        found = source.find(wanted)
        if found is not None:
            return found
    return None


def _choose(
    key: str | None,
    wanted: str | None,
    private_key_file: str | None,
    choice: KeyringChoice,
    passphrase_file: str | None,
) -> SigningKey | Found:
    if key or wanted:
        sources = key_sources(choice, passphrase_file)
        found = find_key(key or str(wanted), sources)
        if found is not None:
            return found
        if key:
            where = " or ".join(source.label for source in sources)
            message = f"no key named {key!r} (looked in {where})"
            raise ConfigError(message, hint="see `gonka keys list`")
    elif choice.chosen_backend():
        raise UsageError(
            "--keyring-backend names a keyring; choose its key with --key NAME, "
            "--from NAME or --account-address ADDR"
        )
    env_value = os.environ.get(ENV_PRIVATE_KEY)
    if env_value:
        return _parse(env_value, f"${ENV_PRIVATE_KEY}")
    if private_key_file:
        return _parse(_read_key_file(Path(private_key_file)), private_key_file)
    if wanted:
        where = " or ".join(source.label for source in key_sources(choice))
        raise ConfigError(
            f"no stored key has the address {wanted} (looked in {where})",
            hint="see `gonka keys list`",
        )
    return _default_key(passphrase_file)


def _default_key(passphrase_file: str | None) -> Found:
    from gonka_cli.keys.keystore import Keystore

    store = Keystore.default()
    default = store.default_name()
    if default is None:
        raise ConfigError("no signing key is configured", hint=NO_KEY_HINT)
    stored = store.load(default)
    label = f"the gonka keystore {store.directory}"
    return Found(
        stored.name, stored.address, label, lambda: _unlock(store, stored, passphrase_file)
    )


def _unlock(store: Keystore, stored: StoredKey, passphrase_file: str | None) -> SigningKey:
    from gonka_cli.keys import keystore

    for warning in store.exposure(stored):
        sys.stderr.write(f"warning: {warning}\n")
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
        from gonka_cli.keys.files import read_small

        return read_small(path).decode()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise UsageError(f"{path}: cannot read the key file ({reason})") from None
