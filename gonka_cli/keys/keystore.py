"""Encrypted key files on disk, and where their passphrases come from.

One JSON file per key, ``<gonka home>/keys/<name>.json``: mode 0600 in a 0700
directory, written atomically (temporary file, fsync, link or rename, fsync of the
directory) and never replaced without ``force``. Format version 1::

    {
      "format": "gonka-keystore",
      "version": 1,
      "name": "demo",                          # must equal the file name (the key's name)
      "address": "gonka1...",                  # clear, so `list` and `show` need no passphrase
      "pubkey": "<base64 of the 33-byte compressed public key>",
      "hd_path": "m/44'/1200'/0'/0/0",         # null for an imported hex key
      "created": "2026-01-01T00:00:00+00:00",
      "crypto": {
        "kdf": "scrypt",
        "kdfparams": {"n": 131072, "r": 8, "p": 1, "dklen": 32, "salt": "<16 bytes, hex>"},
        "cipher": "aes-256-gcm",
        "nonce": "<12 bytes, hex>",
        "ciphertext": "<hex of the ciphertext followed by the 16-byte GCM tag>"
      }
    }

The plaintext is the UTF-8 JSON ``{"private_key": "<64 hex>", "mnemonic": "<words>" | null}``;
the AES-GCM associated data is ``b"gonka-keystore/1 " + address``, so a file whose
clear address was edited does not open. The key is scrypt(passphrase UTF-8, salt, n,
r, p). After decryption the key must give the file's address and public key.

An unencrypted file (``--unencrypted``, for throwaway CI keys) has instead
``"crypto": {"kdf": "none", "cipher": "none", "plaintext": {...the same object...}}``.
The default key's name is in ``<gonka home>/keys/default_key``.

`SCRYPT_N` is the cost of new files; tests lower it by monkeypatching (the one knob:
every file records its own parameters, so files of any cost open).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gonka_cli.atomic import replacing
from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.jsontext import loads
from gonka_cli.keys.files import exposure_warning, read_regular, read_small
from gonka_cli.keys.material import SigningKey, parse_address
from gonka_cli.paths import ensure_private_dir, gonka_home

FORMAT = "gonka-keystore"
VERSION = 1
SCRYPT_N = 2**17  # 128 MiB and about half a second: OWASP's floor for scrypt with r=8, p=1
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_MEMORY = 2**30  # refuse files that would make us allocate more than 1 GiB
ENV_PASSPHRASE = "GONKA_KEYRING_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
DEFAULT_FILE = "default_key"
MAX_FILE_BYTES = 1 << 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CORRUPT_HINT = (
    "restore the file from a backup, or remove it with `gonka keys delete NAME -y`; "
    "the other keys are unaffected"
)

Random = Callable[[int], bytes]


@dataclass(frozen=True)
class KeyMaterial:
    """What a key file protects: the private key and the mnemonic it came from, if any."""

    secret: bytes = field(repr=False)
    mnemonic: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StoredKey:
    """The clear part of a key file: all that `list` and `show` need."""

    name: str
    address: str
    pubkey: str
    encrypted: bool
    hd_path: str | None
    created: str
    path: Path
    document: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Passphrase:
    """A passphrase and where it came from, for messages (never the value itself)."""

    value: str = field(repr=False)
    source: str


_KEY_LIKE = re.compile(r"(?:0[xX])?[0-9a-fA-F]{64}")


def looks_like_a_key(name: str) -> bool:
    """Whether a would-be name looks like a private key (a secret pasted in the wrong place)."""
    return _KEY_LIKE.fullmatch(name.strip()) is not None


def validate_name(name: str) -> str:
    """A key name: 1 to 64 letters, digits, ``.``, ``_``, ``-``; not an address, and not
    something that looks like a private key (a secret pasted in the wrong place)."""
    if _KEY_LIKE.fullmatch(name.strip()):
        raise UsageError(
            "that key name looks like a private key; it was not stored",
            hint="give a name (`gonka keys import NAME`) and the key on stdin or at the prompt",
        )
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid key name {name!r}",
            hint="use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if name.lower().startswith("gonka1"):
        raise UsageError(f"key name {name!r} looks like an address; choose another name")
    return name


# ---- the file format (pure) -------------------------------------------------------------


def _aad(address: str) -> bytes:
    return f"{FORMAT}/{VERSION} {address}".encode()


def _plaintext(material: KeyMaterial) -> dict[str, Any]:
    return {"private_key": material.secret.hex(), "mnemonic": material.mnemonic}


def _scrypt(passphrase: str, params: dict[str, Any]) -> bytes:
    n, r, p = params["n"], params["r"], params["p"]
    return hashlib.scrypt(
        passphrase.encode(),
        salt=bytes.fromhex(params["salt"]),
        n=n,
        r=r,
        p=p,
        dklen=32,
        maxmem=MAX_SCRYPT_MEMORY + (1 << 24),
    )


def seal(
    material: KeyMaterial, passphrase: str, address: str, random: Random = os.urandom
) -> dict[str, Any]:
    """The ``crypto`` object of an encrypted file: scrypt, then AES-256-GCM."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    params = {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "dklen": 32, "salt": random(16).hex()}
    nonce = random(12)
    plaintext = json.dumps(_plaintext(material)).encode()
    ciphertext = AESGCM(_scrypt(passphrase, params)).encrypt(nonce, plaintext, _aad(address))
    return {
        "kdf": "scrypt",
        "kdfparams": params,
        "cipher": "aes-256-gcm",
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
    }


def build_document(
    name: str,
    key: SigningKey,
    material: KeyMaterial,
    *,
    passphrase: str | None,
    hd_path: str | None,
    created: str,
    random: Random = os.urandom,
) -> dict[str, Any]:
    """A whole key file as a JSON object; `passphrase` None stores the key unencrypted."""
    if passphrase is None:
        crypto: dict[str, Any] = {"kdf": "none", "cipher": "none"}
        crypto["plaintext"] = _plaintext(material)
    else:
        crypto = seal(material, passphrase, key.address, random)
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "address": key.address,
        "pubkey": key.public_key_b64,
        "hd_path": hd_path,
        "created": created,
        "crypto": crypto,
    }


def _corrupt(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: corrupt key file ({what})", hint=_CORRUPT_HINT)


def _text_field(document: dict[str, Any], name: str, path: Path) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise _corrupt(path, f"field {name!r} missing or not text")
    return value


def parse_document(raw: bytes, path: Path) -> StoredKey:
    """The clear part of a key file, checked; a clear error naming the file otherwise."""
    try:
        document = loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(path, "not valid JSON; truncated?") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _corrupt(path, f"not a {FORMAT} file")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        raise ConfigError(
            f"{path}: key file format version {version!r} is not supported (this gonka reads 1)",
            hint="upgrade gonka-cli" if newer else _CORRUPT_HINT,
        )
    crypto = document.get("crypto")
    if not isinstance(crypto, dict) or crypto.get("cipher") not in ("aes-256-gcm", "none"):
        raise _corrupt(path, "missing or unknown 'crypto' section")
    hd_path, created = document.get("hd_path"), document.get("created")
    if document.get("name", path.stem) != path.stem:
        raise _corrupt(
            path, f"its name field says {document.get('name')!r} but the file is {path.name}"
        )
    try:
        address = parse_address(_text_field(document, "address", path))
    except UsageError:
        raise _corrupt(path, "the address is not a valid gonka1 address") from None
    return StoredKey(
        name=path.stem,
        address=address,
        pubkey=_text_field(document, "pubkey", path),
        encrypted=crypto["cipher"] != "none",
        hd_path=hd_path if isinstance(hd_path, str) else None,
        created=created if isinstance(created, str) else "",
        path=path,
        document=document,
    )


def _check_params(params: Any, path: Path) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _corrupt(path, "missing scrypt parameters")
    n, r, p = params.get("n"), params.get("r"), params.get("p")
    if not isinstance(n, int) or not isinstance(r, int) or not isinstance(p, int):
        raise _corrupt(path, "bad scrypt parameters")
    if not isinstance(params.get("salt"), str) or min(r, p) < 1:
        raise _corrupt(path, "bad scrypt parameters")
    if n < 2 or n & (n - 1) or 128 * n * r * p > MAX_SCRYPT_MEMORY or params.get("dklen", 32) != 32:
        raise _corrupt(path, "scrypt parameters out of range")
    return params


def _decrypt(stored: StoredKey, passphrase: Passphrase) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    crypto, path = stored.document["crypto"], stored.path
    if crypto.get("kdf") != "scrypt":
        raise _corrupt(path, f"unknown key derivation {crypto.get('kdf')!r}")
    params = _check_params(crypto.get("kdfparams"), path)
    try:
        nonce = bytes.fromhex(crypto["nonce"])
        ciphertext = bytes.fromhex(crypto["ciphertext"])
        key = _scrypt(passphrase.value, params)
    except (KeyError, TypeError, ValueError):
        raise _corrupt(path, "bad nonce, salt or ciphertext") from None
    if len(nonce) != 12:
        raise _corrupt(path, "the nonce is not 12 bytes")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _aad(stored.address))
    except InvalidTag:
        raise ConfigError(
            f"wrong passphrase for key {stored.name!r} (from {passphrase.source}): "
            "the cipher rejected it",
            hint=f"if the passphrase is right, {path} was altered",
        ) from None


def open_key(stored: StoredKey, passphrase: Passphrase | None) -> KeyMaterial:
    """Decrypt (or read) a key file's secret and check it against the clear address."""
    crypto, path = stored.document["crypto"], stored.path
    if stored.encrypted:
        if passphrase is None:
            raise ConfigError(f"key {stored.name!r} is encrypted and no passphrase was given")
        inner: Any = _json_object(_decrypt(stored, passphrase), path)
    else:
        inner = crypto.get("plaintext")
    if not isinstance(inner, dict) or not isinstance(inner.get("private_key"), str):
        raise _corrupt(path, "no private key inside")
    try:
        key = SigningKey.from_hex(inner["private_key"])
    except ConfigError:
        raise _corrupt(path, "the private key inside is malformed") from None
    if key.address != stored.address or key.public_key_b64 != stored.pubkey:
        raise _corrupt(path, "the key inside does not match the file's address or public key")
    mnemonic = inner.get("mnemonic")
    return KeyMaterial(key.secret, mnemonic if isinstance(mnemonic, str) else None)


def _json_object(raw: bytes, path: Path) -> Any:
    try:
        return loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(path, "the decrypted content is not JSON") from None


# ---- files on disk -------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write `data` to `path` (0600) all or nothing; FileExistsError unless `overwrite`."""
    with replacing(path, overwrite=overwrite) as handle:
        handle.write(data)


def _encode(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


class Keystore:
    """The key files of one directory (normally ``<gonka home>/keys``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def default(cls) -> Keystore:
        """The keystore under the user's gonka directory (``$GONKA_HOME``)."""
        return cls(gonka_home() / "keys")

    @staticmethod
    def valid_name(name: str) -> bool:
        """Whether `name` could name a key of this store (no error, nothing echoed)."""
        return (
            _NAME.fullmatch(name) is not None
            and not looks_like_a_key(name)
            and not name.lower().startswith("gonka1")
        )

    def path_for(self, name: str) -> Path:
        """Where the key `name` lives."""
        return self.directory / f"{validate_name(name)}.json"

    def load(self, name: str) -> StoredKey:
        """The key called `name`; ConfigError if there is none or its file is corrupt."""
        path = self.path_for(name)
        try:
            raw = read_regular(path)
        except FileNotFoundError:
            raise ConfigError(f"no key named {name!r}", hint="see `gonka keys list`") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the key file ({exc.strerror})") from None
        return parse_document(raw, path)

    def scan(self) -> tuple[list[StoredKey], list[ConfigError]]:
        """Every readable key, sorted by name, and one error per file that is not."""
        keys: list[StoredKey] = []
        problems: list[ConfigError] = []
        paths = sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []
        for path in paths:
            if path.name.startswith(".") or not _NAME.fullmatch(path.stem):
                continue
            try:
                keys.append(self.load(path.stem))
            except ConfigError as problem:
                problems.append(problem)
        return keys, problems

    def exposure(self, stored: StoredKey | None = None) -> list[str]:
        """Warnings for a keys directory (and a key file) that others can read."""
        paths = [self.directory] + ([stored.path] if stored is not None else [])
        return [warning for warning in map(exposure_warning, paths) if warning]

    def find_by_address(self, address: str) -> StoredKey | None:
        """The stored key with this address, if any (corrupt files are skipped)."""
        wanted = parse_address(address)
        return next((key for key in self.scan()[0] if key.address == wanted), None)

    def find(self, name_or_address: str) -> StoredKey:
        """A key by name, or by address when given a ``gonka1...`` address."""
        if not name_or_address.lower().startswith("gonka1"):
            return self.load(name_or_address)
        found = self.find_by_address(name_or_address)
        if found is None:
            raise ConfigError(
                f"no stored key has the address {name_or_address}", hint="see `gonka keys list`"
            )
        return found

    def add(self, document: dict[str, Any], *, force: bool) -> StoredKey:
        """Write a new key file; never replace one unless `force`, never duplicate an address."""
        name = validate_name(document["name"])
        twin = self.find_by_address(document["address"])
        if twin is not None and twin.name != name:
            raise ConfigError(
                f"key {twin.name!r} already holds the address {twin.address}",
                hint=f"use that key, or `gonka keys delete {twin.name}` first",
            )
        return self._write(name, document, force=force)

    def _write(self, name: str, document: dict[str, Any], *, force: bool) -> StoredKey:
        path = self.path_for(name)
        try:
            ensure_private_dir(self.directory)
            write_atomic(path, _encode(document), overwrite=force)
        except FileExistsError:
            raise ConfigError(
                f"a key named {name!r} already exists",
                hint="pass --force to replace it (its old secret is then gone)",
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the key file ({exc.strerror})") from None
        return parse_document(_encode(document), path)

    def delete(self, name: str) -> StoredKey:
        """Remove a key file (and the default pointer if it named this key)."""
        stored = self.load(name)
        stored.path.unlink()
        if self.default_name() == name:
            self.set_default(None)
        return stored

    def remove_unreadable(self, name: str) -> Path:
        """Remove a key file that cannot be parsed (and the default pointer if it named it)."""
        path = self.path_for(name)
        path.unlink()
        if self.default_name() == name:
            self.set_default(None)
        return path

    def rename(self, old: str, new: str, *, force: bool) -> StoredKey:
        """Give a key a new name; its secret is not touched (no passphrase needed)."""
        if old == new:
            raise UsageError("the old and new names are the same")
        stored = self.load(old)
        renamed = self._write(validate_name(new), {**stored.document, "name": new}, force=force)
        stored.path.unlink()
        if self.default_name() == old:
            self.set_default(new)
        return renamed

    def default_name(self) -> str | None:
        """The name of the default key, or None when none is set."""
        try:
            text = read_regular(self.directory / DEFAULT_FILE, 4096).decode().strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text or None

    def has_default(self) -> bool:
        """Whether a default key is set (cheap: no key file is read)."""
        return (self.directory / DEFAULT_FILE).is_file()

    def set_default(self, name: str | None) -> None:
        """Make `name` the default key (it must exist), or clear the default with None."""
        pointer = self.directory / DEFAULT_FILE
        if name is None:
            pointer.unlink(missing_ok=True)
            return
        self.load(name)
        try:
            write_atomic(pointer, f"{name}\n".encode(), overwrite=True)
        except OSError as exc:
            raise ConfigError(f"{pointer}: cannot write ({exc.strerror})") from None


# ---- passphrases ---------------------------------------------------------------------------


def read_hidden(prompt: str) -> str:
    """A line typed at the terminal without echo; ConfigError when there is no terminal."""
    if sys.platform != "win32":
        try:
            with open("/dev/tty", "rb"):
                pass
        except OSError:
            raise ConfigError(
                "a passphrase is needed and there is no terminal to ask for it",
                hint=f"set {ENV_PASSPHRASE} or pass --passphrase-file PATH",
            ) from None
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise ConfigError("nothing was entered at the prompt") from None


class _Session:
    """The passphrase typed at the prompt, kept so that a process asks only once."""

    typed: str | None = None


SESSION = _Session()


def forget_passphrase() -> None:
    """Forget the passphrase typed earlier in this process."""
    SESSION.typed = None


def _given(passphrase_file: str | None) -> Passphrase | None:
    if passphrase_file:
        try:
            text = read_small(Path(passphrase_file)).decode().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not text"
            message = f"{passphrase_file}: cannot read the passphrase file ({reason})"
            raise ConfigError(message) from None
        if not text:
            raise ConfigError(f"{passphrase_file}: the passphrase file is empty")
        return Passphrase(text, passphrase_file)
    from_env = os.environ.get(ENV_PASSPHRASE)
    return Passphrase(from_env, f"${ENV_PASSPHRASE}") if from_env else None


def passphrase_to_open(
    name: str, passphrase_file: str | None = None, *, prompt: str | None = None
) -> Passphrase:
    """--passphrase-file, else $GONKA_KEYRING_PASSPHRASE, else a prompt (once per process)."""
    given = _given(passphrase_file)
    if given is not None:
        return given
    if SESSION.typed is None:
        typed = read_hidden(prompt or f"Passphrase for key {name!r}: ")
        if not typed:
            raise ConfigError("no passphrase entered")
        SESSION.typed = typed
    return Passphrase(SESSION.typed, "the prompt")


def passphrase_to_create(passphrase_file: str | None = None) -> Passphrase:
    """Like `passphrase_to_open`, but a prompt asks twice and refuses an empty passphrase."""
    given = _given(passphrase_file)
    if given is not None:
        return given
    if SESSION.typed is None:
        first = read_hidden("New keystore passphrase: ")
        if not first:
            raise ConfigError(
                "an empty passphrase protects nothing",
                hint="type a passphrase, or use --unencrypted for a throwaway key",
            )
        if read_hidden("Repeat the passphrase: ") != first:
            raise ConfigError("the two passphrases differ; nothing was stored")
        SESSION.typed = first
    return Passphrase(SESSION.typed, "the prompt")


def unencrypted_warning(stored: StoredKey) -> str:
    """What to say every time an unencrypted key is used."""
    return (
        f"key {stored.name!r} is stored UNENCRYPTED in {stored.path}: "
        "fit for a throwaway CI key only"
    )
