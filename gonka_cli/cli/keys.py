"""``gonka keys``: the encrypted keystore, with the command names of `inferenced keys`.

Secrets (mnemonics, hex keys, passphrases) are read from a hidden prompt, or from
stdin when it is piped; never from a command-line argument, where they would sit in
the shell history and the process list. The keystore, `cryptography` and `mnemonic`
are imported inside the commands, so other commands do not pay for them.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gonka_cli.cli._common import (
    GonkaGroup,
    HomeOpt,
    KeyringBackendOpt,
    KeyringDirOpt,
    PassphraseFileOpt,
    emit,
    emit_json,
    help_markup,
    warn,
)
from gonka_cli.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from gonka_cli.keys import SigningKey
    from gonka_cli.keys.keyring import Entry, Keyring
    from gonka_cli.keys.keystore import KeyMaterial, Keystore, StoredKey

app = typer.Typer(
    name="keys",
    cls=GonkaGroup,
    help="Create, import, list, show, export, delete and rename keys; set the default key.",
    no_args_is_help=True,
    rich_markup_mode=help_markup(),
)

BACKUP_WARNING = (
    "**Important**: write this mnemonic phrase down and keep it somewhere safe.\n"
    "It is the only way to recover this key if the key file or its passphrase is lost."
)


class Output(StrEnum):
    """How a command prints its result."""

    text = "text"
    json = "json"


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The key's name.", show_default=False)]
KeyArg = Annotated[
    str, typer.Argument(metavar="NAME|ADDRESS", help="A key's name or its gonka1 address.")
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="text or json.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing key of that name (its secret is lost).")
]
UnencryptedOpt = Annotated[
    bool,
    typer.Option(
        "--unencrypted",
        help="Store the key WITHOUT encryption (throwaway CI keys only; warns at every use).",
    ),
]


ArmorPassphraseFileOpt = Annotated[
    str | None,
    typer.Option(
        "--armor-passphrase-file",
        metavar="PATH",
        help="Passphrase of the armored key (else a hidden prompt, or the next stdin line).",
    ),
]


def _keyring(
    backend: str | None, keyring_dir: str | None, home: str | None, passphrase_file: str | None
) -> Keyring | None:
    """inferenced's keyring when --keyring-backend (or $GONKA_KEYRING_BACKEND) names one."""
    from gonka_cli.keys.keyring import Keyring
    from gonka_cli.keys.selection import KeyringChoice

    choice = KeyringChoice(backend, keyring_dir, home)
    chosen = choice.chosen_backend()
    if chosen is None:
        return None
    return Keyring(chosen, choice.base(), passphrase_file=passphrase_file)


def _keyring_entry(keyring: Keyring, wanted: str) -> Entry:
    entry = keyring.find(wanted)
    if entry is None:
        raise ConfigError(f"no key {wanted!r} in {keyring.label}", hint="see `gonka keys list`")
    return entry


def _describe_entry(entry: Entry, keyring: Keyring) -> dict[str, Any]:
    import base64

    return {
        "name": entry.name,
        "address": entry.address,
        "pubkey": base64.b64encode(entry.public_key).decode(),
        "keyring": str(keyring.directory),
        "backend": keyring.backend,
        "record": entry.encoding,
    }


def _armor_passphrase(path: str | None, secrets: _SecretInput, *, twice: bool) -> str:
    """--armor-passphrase-file, else a hidden prompt (twice for a new export), else stdin."""
    if path:
        from gonka_cli.keys.files import read_regular

        try:
            text = read_regular(Path(path), 4096).decode().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not text"
            raise UsageError(f"{path}: cannot read the armor passphrase file ({reason})") from None
    else:
        text = secrets.read("Passphrase of the armored key: ")
        if twice and _interactive() and secrets.read("Repeat it: ") != text:
            raise ConfigError("the two passphrases differ; nothing was written")
    if not text:
        raise ConfigError("the armored key needs a non-empty passphrase")
    return text


def _store() -> Keystore:
    from gonka_cli.keys.keystore import Keystore

    return Keystore.default()


def _interactive() -> bool:
    """Whether stdin is a terminal (then secrets are asked at a hidden prompt)."""
    return sys.stdin.isatty()


def _note(message: str) -> None:
    typer.echo(message, err=True)


class _SecretInput:
    """Secrets typed at hidden prompts, or the lines of piped stdin, in order."""

    def __init__(self) -> None:
        self._lines: list[str] | None = None

    def read(self, prompt: str, *, whole: bool = False) -> str:
        """The next secret: a hidden prompt on a terminal, else the next stdin line (or all)."""
        from gonka_cli.keys.keystore import read_hidden

        if _interactive():
            return read_hidden(prompt)
        if self._lines is None:
            self._lines = sys.stdin.read().splitlines()
        if whole:
            text, self._lines = "\n".join(self._lines), []
            return text
        return self._lines.pop(0) if self._lines else ""


def _passphrase(unencrypted: bool, passphrase_file: str | None) -> str | None:
    from gonka_cli.keys.keystore import passphrase_to_create

    if unencrypted:
        if passphrase_file:
            raise UsageError("--unencrypted and --passphrase-file do not go together")
        return None
    return passphrase_to_create(passphrase_file).value


def _refuse_existing(store: Keystore, name: str, force: bool) -> None:
    if store.path_for(name).exists() and not force:
        raise ConfigError(
            f"a key named {name!r} already exists",
            hint="pass --force to replace it (its old secret is then gone)",
        )


def _save(
    store: Keystore,
    name: str,
    key: SigningKey,
    material: KeyMaterial,
    *,
    hd_path: str | None,
    unencrypted: bool,
    passphrase_file: str | None,
    force: bool,
) -> StoredKey:
    from datetime import UTC, datetime

    from gonka_cli.keys.keystore import build_document, unencrypted_warning

    passphrase = _passphrase(unencrypted, passphrase_file)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    document = build_document(
        name, key, material, passphrase=passphrase, hd_path=hd_path, created=created
    )
    stored = store.add(document, force=force)
    state = "unencrypted" if unencrypted else "encrypted"
    _note(f"stored key {name!r} ({stored.address}, {state}) in {stored.path}")
    if store.default_name() is None:
        store.set_default(name)
        _note(f"{name!r} is now the default key")
    if unencrypted:
        warn(unencrypted_warning(stored))
    return stored


def _describe(stored: StoredKey, default: str | None) -> dict[str, Any]:
    return {
        "name": stored.name,
        "address": stored.address,
        "pubkey": stored.pubkey,
        "hd_path": stored.hd_path,
        "encrypted": stored.encrypted,
        "default": stored.name == default,
        "created": stored.created,
    }


@app.command("add", short_help="Create a key from a new 24-word mnemonic, or recover one.")
def add_command(
    name: NameArg,
    recover: Annotated[
        bool,
        typer.Option("--recover", help="Read an existing mnemonic (hidden prompt, or stdin)."),
    ] = False,
    hd_path: Annotated[
        str | None,
        typer.Option(
            "--hd-path", metavar="PATH", help="Full BIP32 path; overrides the three below."
        ),
    ] = None,
    coin_type: Annotated[
        int, typer.Option("--coin-type", help="BIP44 coin type (Gonka 1200, Cosmos 118).")
    ] = 1200,
    account: Annotated[int, typer.Option("--account", help="BIP44 account number.")] = 0,
    index: Annotated[int, typer.Option("--index", help="BIP44 address index.")] = 0,
    bip39_passphrase: Annotated[
        bool,
        typer.Option(
            "--bip39-passphrase",
            help="Also read an optional BIP39 passphrase (prompt, or the next stdin line).",
        ),
    ] = False,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Do not show the new mnemonic.")
    ] = False,
    unencrypted: UnencryptedOpt = False,
    force: ForceOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Create a key from a new 24-word mnemonic, derived at m/44'/1200'/0'/0/0.

    stdout gets the address (with --output json: name, address, pubkey, hd_path and,
    for a new key, the mnemonic). The new mnemonic is shown once, on stderr, with a
    warning to write it down; --no-backup skips it. --recover reads your words instead:

        echo "word1 word2 ..." | gonka keys add demo --recover

    The keystore passphrase comes from --passphrase-file, $GONKA_KEYRING_PASSPHRASE,
    or a hidden prompt asked twice. With --keyring-backend test|file the key goes into
    inferenced's keyring instead, as `inferenced keys add` writes it.
    """
    from gonka_cli.keys import SigningKey, hd
    from gonka_cli.keys.keystore import KeyMaterial

    keyring = _keyring(keyring_backend, keyring_dir, home, passphrase_file)
    store = _store()
    if keyring is None:
        _refuse_existing(store, name, force)
    path = hd_path if hd_path else hd.bip44_path(coin_type, account, index)
    hd.parse_path(path)
    secrets = _SecretInput()
    words = (
        hd.check_mnemonic(secrets.read("Mnemonic: ", whole=not bip39_passphrase))
        if recover
        else hd.generate_mnemonic()
    )
    extra = secrets.read("BIP39 passphrase (may be empty): ") if bip39_passphrase else ""
    secret = hd.derive_path(hd.mnemonic_to_seed(words, extra), path).secret
    key = SigningKey.from_secret(secret)
    shown = None if recover or no_backup else words
    if keyring is not None:
        _add_to_keyring(keyring, name, key, force=force, output=output, mnemonic=shown)
        return
    stored = _save(
        store,
        name,
        key,
        KeyMaterial(secret, words),
        hd_path=path,
        unencrypted=unencrypted,
        passphrase_file=passphrase_file,
        force=force,
    )
    if output is Output.json:
        emit_json({**_describe(stored, store.default_name()), "mnemonic": shown})
        return
    emit(stored.address)
    if shown:
        _note(f"\n{BACKUP_WARNING}\n\n{shown}\n")


def _add_to_keyring(
    keyring: Keyring,
    name: str,
    key: SigningKey,
    *,
    force: bool,
    output: Output,
    mnemonic: str | None = None,
) -> None:
    entry = keyring.add(name, key, force=force)
    _note(f"stored key {name!r} ({entry.address}) in {keyring.label}")
    if output is Output.json:
        emit_json({**_describe_entry(entry, keyring), "mnemonic": mnemonic})
        return
    emit(entry.address)
    if mnemonic:
        _note(f"\n{BACKUP_WARNING}\n\n{mnemonic}\n")


@app.command("import", short_help="Import a key: an armored export, or hex from stdin.")
def import_command(
    name: NameArg,
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILE]",
            help="An armored key (`inferenced keys export NAME`); else hex from stdin.",
        ),
    ] = None,
    armor_passphrase_file: ArmorPassphraseFileOpt = None,
    unencrypted: UnencryptedOpt = False,
    force: ForceOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Import a key: an armored export FILE, or hex from a hidden prompt or stdin.

    Made for `inferenced`'s exports. The armored one (its default), whose passphrase
    comes from --armor-passphrase-file, a hidden prompt, or the first stdin line:

        inferenced keys export NAME > key.asc && gonka keys import NAME key.asc

    or hex (0x prefix, upper case and whitespace are fine):

    \b
        inferenced keys export NAME --unarmored-hex --unsafe |
            gonka keys import NAME

    With --keyring-backend test|file the key goes into inferenced's keyring.
    """
    from gonka_cli.keys.keystore import KeyMaterial

    keyring = _keyring(keyring_backend, keyring_dir, home, passphrase_file)
    store = _store()
    if keyring is None:
        _refuse_existing(store, name, force)
    key = _imported_key(file, armor_passphrase_file, _SecretInput())
    if keyring is not None:
        _add_to_keyring(keyring, name, key, force=force, output=output)
        return
    stored = _save(
        store,
        name,
        key,
        KeyMaterial(key.secret),
        hd_path=None,
        unencrypted=unencrypted,
        passphrase_file=passphrase_file,
        force=force,
    )
    if output is Output.json:
        emit_json(_describe(stored, store.default_name()))
    else:
        emit(stored.address)


def _imported_key(
    file: str | None, passphrase_file: str | None, secrets: _SecretInput
) -> SigningKey:
    from gonka_cli.keys import SigningKey, armor
    from gonka_cli.keys.files import read_regular

    if file is None:
        text = secrets.read("Hex private key: ", whole=True)
    else:
        try:
            text = read_regular(Path(file), 64 * 1024).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not text"
            raise UsageError(f"{file}: cannot read the key file ({reason})") from None
    if armor.looks_armored(text):
        passphrase = _armor_passphrase(passphrase_file, secrets, twice=False)
        return SigningKey.from_secret(armor.decrypt(text, passphrase))
    try:
        return SigningKey.from_hex(text)
    except ConfigError as exc:
        raise UsageError(f"the key read: {exc.message}") from None


def _list_keyring(keyring: Keyring, output: Output) -> None:
    entries, problems = keyring.scan()
    for problem in problems:
        warn(f"{problem.message}; skipped")
    if output is Output.json:
        emit_json([_describe_entry(entry, keyring) for entry in entries])
        return
    if not entries:
        _note(f"no usable keys in {keyring.label}")
    width = max((len(entry.name) for entry in entries), default=0)
    for entry in entries:
        emit(f"{entry.name:<{width}}  {entry.address}")


@app.command("list", short_help="List the stored keys: name, address and notes.")
def list_command(
    output: OutputOpt = Output.text,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassphraseFileOpt = None,
) -> None:
    """List the stored keys: name, address, and notes (default, unencrypted).

    With --keyring-backend test|file: the keys of inferenced's keyring instead.
    """
    keyring = _keyring(keyring_backend, keyring_dir, home, passphrase_file)
    if keyring is not None:
        _list_keyring(keyring, output)
        return
    store = _store()
    for warning in store.exposure():
        warn(warning)
    keys, problems = store.scan()
    for problem in problems:
        warn(f"{problem.message}; skipped")
    default = store.default_name()
    if output is Output.json:
        emit_json([_describe(stored, default) for stored in keys])
        return
    if not keys:
        _note("no keys yet; create one with `gonka keys add NAME`")
    width = max((len(stored.name) for stored in keys), default=0)
    for stored in keys:
        notes = [
            word
            for word, on in (
                ("default", stored.name == default),
                ("unencrypted", not stored.encrypted),
            )
            if on
        ]
        emit(f"{stored.name:<{width}}  {stored.address}  {','.join(notes)}".rstrip())


@app.command("show", short_help="Show a key's address and public key (no passphrase).")
def show_command(
    name: KeyArg,
    address: Annotated[
        bool, typer.Option("--address", "-a", help="Print only the address.")
    ] = False,
    pubkey: Annotated[
        bool, typer.Option("--pubkey", "-p", help="Print only the base64 public key.")
    ] = False,
    output: OutputOpt = Output.text,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassphraseFileOpt = None,
) -> None:
    """Show a key's name, address and public key (no passphrase for gonka's keystore)."""
    keyring = _keyring(keyring_backend, keyring_dir, home, passphrase_file)
    if keyring is not None:
        described = _describe_entry(_keyring_entry(keyring, name), keyring)
    else:
        store = _store()
        stored = store.find(name)
        described = _describe(stored, store.default_name())
    if address or pubkey:
        for wanted, field in ((address, "address"), (pubkey, "pubkey")):
            if wanted:
                emit(described[field])
        return
    if output is Output.json:
        emit_json(described)
        return
    for field, value in described.items():
        shown = ("yes" if value else "no") if isinstance(value, bool) else (value or "-")
        emit(f"{field}: {shown}")


@app.command("export", short_help="Print a key's private key (needs --unsafe), or --armor it.")
def export_command(
    name: KeyArg,
    unsafe: Annotated[
        bool, typer.Option("--unsafe", help="Confirm that you want the private key printed.")
    ] = False,
    unarmored_hex: Annotated[
        bool,
        typer.Option("--unarmored-hex", help="Accepted for inferenced; hex is the default."),
    ] = True,
    armored: Annotated[
        bool,
        typer.Option(
            "--armor", help="Print the passphrase-protected block `inferenced keys import` reads."
        ),
    ] = False,
    armor_passphrase_file: ArmorPassphraseFileOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
) -> None:
    """Print a key's private key as 64 hex characters (needs --unsafe), or --armor it.

    The hex is what GONKA_PRIVATE_KEY and `gonka keys import` take; the armored block
    (encrypted with a passphrase of its own) goes back into `inferenced keys import`.
    """
    from gonka_cli.keys import armor

    keyring = _keyring(keyring_backend, keyring_dir, home, passphrase_file)
    if armored:
        secret = _export_secret(name, keyring, passphrase_file)
        passphrase = _armor_passphrase(armor_passphrase_file, _SecretInput(), twice=True)
        emit(armor.encrypt(secret, passphrase).rstrip("\n"))
        return
    if not unsafe:
        raise UsageError(
            "export prints the private key in clear text; refusing without --unsafe",
            hint=f"gonka keys export {name} --unsafe, or --armor for a protected block",
        )
    secret = _export_secret(name, keyring, passphrase_file)
    warn("this is the private key: whoever sees it controls the account")
    emit(secret.hex())


def _export_secret(name: str, keyring: Keyring | None, passphrase_file: str | None) -> bytes:
    from gonka_cli.keys import keystore

    if keyring is not None:
        return _keyring_entry(keyring, name).signing_key().secret
    stored = _store().find(name)
    if stored.encrypted:
        passphrase = keystore.passphrase_to_open(stored.name, passphrase_file)
        return keystore.open_key(stored, passphrase).secret
    warn(keystore.unencrypted_warning(stored))
    return keystore.open_key(stored, None).secret


@app.command("delete", short_help="Delete a key (asks first; -y does not ask).")
def delete_command(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassphraseFileOpt = None,
) -> None:
    """Delete a key file. Without the mnemonic or a backup, its secret is gone."""
    keyring = _keyring(keyring_backend, keyring_dir, home, passphrase_file)
    if keyring is not None:
        _delete_from_keyring(keyring, name, yes=yes)
        return
    store = _store()
    try:
        stored = store.load(name)
    except ConfigError:
        if not store.path_for(name).is_file():
            raise
        _delete_unreadable(store, name, yes=yes)
        return
    if not yes:
        if not _interactive():
            raise UsageError("refusing to delete a key without confirmation", hint="pass -y")
        question = f"Delete key {name!r} ({stored.address})?"
        if not typer.confirm(question, default=False, err=True):
            _note("nothing deleted")
            raise typer.Exit(1)
    store.delete(name)
    _note(f"deleted key {name!r} ({stored.address})")


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not _interactive():
        raise UsageError("refusing to delete a key without confirmation", hint="pass -y")
    if not typer.confirm(question, default=False, err=True):
        _note("nothing deleted")
        raise typer.Exit(1)


def _delete_from_keyring(keyring: Keyring, name: str, *, yes: bool) -> None:
    entry = _keyring_entry(keyring, name)
    _confirm(f"Delete key {entry.name!r} ({entry.address}) from {keyring.label}?", yes)
    keyring.delete(entry)
    _note(f"deleted key {entry.name!r} ({entry.address}) from {keyring.label}")


def _delete_unreadable(store: Keystore, name: str, *, yes: bool) -> None:
    """A key file that cannot be read is deleted only with -y: nothing can be shown of it."""
    if not yes:
        raise UsageError(
            f"key {name!r} cannot be read (see `gonka keys list`)",
            hint="pass -y to delete the unreadable file anyway",
        )
    _note(f"deleted the unreadable key file {store.remove_unreadable(name)}")


@app.command("rename")
def rename_command(
    old: Annotated[str, typer.Argument(metavar="OLD", help="The key's current name.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="Its new name.")],
    force: ForceOpt = False,
) -> None:
    """Rename a key (no passphrase needed; the secret is not touched)."""
    renamed = _store().rename(old, new, force=force)
    _note(f"renamed key {old!r} to {renamed.name!r}")


@app.command("default")
def default_command(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="The key to make the default.")
    ] = None,
) -> None:
    """Print the default key's name, or make NAME the default.

    The default key signs when no --key, --account-address, GONKA_PRIVATE_KEY or
    --private-key-file is given. The first key added becomes the default.
    """
    store = _store()
    if name is None:
        current = store.default_name()
        if current is None:
            raise ConfigError("no default key is set", hint="gonka keys default NAME")
        emit(current)
        return
    store.set_default(name)
    _note(f"{name!r} is now the default key")
