"""The Cosmos SDK keyring that `inferenced` keeps: the ``test`` and ``file`` backends.

Folder: ``<keyring dir>/keyring-<backend>/``, where the keyring dir is ``--keyring-dir``,
else ``--home``, else ``$GONKA_KEYRING_DIR``, else ``~/.inference`` (the `inferenced`
default home). Entries:

- ``<name>.info``: the key record (see `gonka_cli.keys.records`); in the file name, ``%``
  and ``/`` of the name are percent-encoded, as 99designs/keyring does.
- ``<40 hex>.address``: the 20 address bytes in hex; its content names ``<name>.info``.
- ``keyhash`` (``file`` backend only): bcrypt hash of the passphrase, checked first.

Each file is a JWE compact token: alg ``PBES2-HS256+A128KW``, enc ``A256GCM``. KEK =
PBKDF2-HMAC-SHA256(password, alg || 0x00 || p2s, p2c, 16 bytes); CEK = AES key unwrap of
part two; plaintext = AES-256-GCM(CEK, iv = part three, AAD = ASCII of part one) of part
four with tag part five. The plaintext is the JSON item ``{"Key": ..., "Data": <base64
record>, ...}``. The ``test`` backend's password is the literal ``test``.

`cryptography` and `bcrypt` are imported inside the functions that need them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys import records
from gonka_cli.keys.material import SigningKey, address_bytes, address_from_public_key

ENV_DIR = "GONKA_KEYRING_DIR"
DEFAULT_HOME = "~/.inference"
BACKENDS = ("test", "file")
UNSUPPORTED = ("os", "kwallet", "pass", "memory")
TEST_PASSWORD = "test"  # noqa: S105 - the test backend's fixed, public password
ALG = "PBES2-HS256+A128KW"
ENC = "A256GCM"
P2C = 8192  # what 99designs/keyring writes; files of any count below MAX_P2C open
MAX_P2C = 1_000_000
MAX_ENTRY_BYTES = 64 * 1024
KEYHASH = "keyhash"
KEYHASH_COST = 10  # the cost inferenced's keyhash files carry ($2a$10$...)


@dataclass(frozen=True)
class Entry:
    """One usable key of a keyring: its name, address and record; the secret hidden."""

    name: str
    address: str
    public_key: bytes
    secret: bytes = field(repr=False)
    encoding: str
    path: Path

    def signing_key(self) -> SigningKey:
        """The key, checked: its secret must give the recorded public key."""
        key = SigningKey.from_secret(self.secret)
        if key.public_key != self.public_key:
            raise ConfigError(f"{self.path}: the private key does not match its public key")
        return key


def keyring_dir(keyring_dir: str | None = None, home: str | None = None) -> Path:
    """--keyring-dir, else --home, else $GONKA_KEYRING_DIR, else ~/.inference."""
    chosen = keyring_dir or home or os.environ.get(ENV_DIR) or DEFAULT_HOME
    return Path(chosen).expanduser()


def check_backend(backend: str) -> str:
    """A backend gonka can read, or a ConfigError that says how to get the key out."""
    if backend in BACKENDS:
        return backend
    if backend in UNSUPPORTED:
        raise ConfigError(
            f"gonka cannot read inferenced's {backend!r} keyring backend "
            "(only 'test' and 'file' are files it can open)",
            hint="export the key with `inferenced keys export NAME > key.asc` and import it "
            "with `gonka keys import NAME key.asc`",
        )
    raise UsageError(f"unknown keyring backend {backend!r}: use test or file")


# ---- JWE (pure) -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WrongPassphrase(ConfigError):
    """The file backend's keyhash refused the passphrase: no entry will open."""


class JWEError(ValueError):
    """A token that is malformed, or that the password or the GCM tag rejects."""


def _kek(password: str, header: dict[str, object]) -> bytes:
    p2c, p2s = header.get("p2c"), header.get("p2s")
    if not isinstance(p2c, int) or isinstance(p2c, bool) or not 0 < p2c <= MAX_P2C:
        raise JWEError("bad p2c iteration count")
    if not isinstance(p2s, str):
        raise JWEError("no p2s salt")
    salt = ALG.encode() + b"\x00" + _unb64url(p2s)
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, p2c, dklen=16)


def jwe_decrypt(token: str, password: str) -> bytes:
    """The plaintext of a PBES2-HS256+A128KW / A256GCM compact token."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

    parts = token.strip().split(".")
    if len(parts) != 5:
        raise JWEError("not a JWE compact token (five dot-separated parts)")
    try:
        header = json.loads(_unb64url(parts[0]))
        wrapped, iv, body, tag = (_unb64url(part) for part in parts[1:])
    except (ValueError, binascii.Error) as exc:
        raise JWEError("malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != ALG or header.get("enc") != ENC:
        raise JWEError(f"unsupported token (expected {ALG} with {ENC})")
    try:
        cek = aes_key_unwrap(_kek(password, header), wrapped)
        if len(cek) != 32 or len(iv) != 12 or len(tag) != 16:
            raise JWEError("bad key, IV or tag length")
        return AESGCM(cek).decrypt(iv, body + tag, parts[0].encode())
    except (InvalidUnwrap, InvalidTag, ValueError) as exc:
        if isinstance(exc, JWEError):
            raise
        raise JWEError("the password or the cipher rejected it") from exc


def jwe_encrypt(
    plaintext: bytes, password: str, *, created: str, random: bytes | None = None
) -> str:
    """A compact token as 99designs/keyring writes it (header keys sorted, like Go's)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    noise = random if random is not None else os.urandom(12 + 32 + 12)
    p2s, cek, iv = noise[:12], noise[12:44], noise[44:56]
    header = {"alg": ALG, "created": created, "enc": ENC, "p2c": P2C, "p2s": _b64url(p2s)}
    protected = _b64url(json.dumps(header, separators=(",", ":")).encode())
    wrapped = aes_key_wrap(_kek(password, header), cek)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode())
    parts = (wrapped, iv, sealed[:-16], sealed[-16:])
    return ".".join([protected, *(_b64url(part) for part in parts)])


def item_json(key: str, data: bytes) -> bytes:
    """The keyring item as Go's encoding/json writes 99designs' Item struct."""
    item = {
        "Key": key,
        "Data": base64.b64encode(data).decode(),
        "Label": "",
        "Description": "",
        "KeychainNotTrustApplication": False,
        "KeychainNotSynchronizable": False,
    }
    return json.dumps(item, separators=(",", ":")).encode()


def item_data(plaintext: bytes) -> bytes:
    """The ``Data`` bytes of a decrypted keyring item."""
    try:
        item = json.loads(plaintext)
        return base64.b64decode(item["Data"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise JWEError("the decrypted item is not a keyring item") from exc


def entry_file_name(name: str) -> str:
    """``<name>.info`` with ``%`` and ``/`` percent-encoded, as 99designs' file backend."""
    return (name + ".info").replace("%", "%25").replace("/", "%2F")


def go_time(now: datetime) -> str:
    """A ``created`` header in the shape Go's time.String() gives."""
    return now.strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")


# ---- the keyring on disk --------------------------------------------------------------------


class Keyring:
    """One backend's folder of an `inferenced` keyring."""

    def __init__(self, backend: str, base: Path, *, passphrase_file: str | None = None) -> None:
        self.backend = check_backend(backend)
        self.directory = base / f"keyring-{backend}"
        self.passphrase_file = passphrase_file
        self._password: str | None = TEST_PASSWORD if backend == "test" else None

    @property
    def label(self) -> str:
        """How messages name this keyring."""
        return f"the inferenced keyring {self.directory}"

    def exists(self) -> bool:
        """Whether the keyring's folder is there (cheap)."""
        return self.directory.is_dir()

    # -- the password -------------------------------------------------------------------------

    def password(self) -> str:
        """The password: ``test``, or the file backend's passphrase checked against keyhash."""
        if self._password is None:
            from gonka_cli.keys.keystore import passphrase_to_open

            given = passphrase_to_open(
                "", self.passphrase_file, prompt=f"Passphrase for {self.label}: "
            )
            self._check_keyhash(given.value, given.source)
            self._password = given.value
        return self._password

    def _check_keyhash(self, password: str, source: str) -> None:
        keyhash = self.directory / KEYHASH
        raw = self._read(keyhash, missing_ok=True)
        if raw is None:
            return
        import bcrypt

        try:
            ok = bcrypt.checkpw(password.encode(), raw.strip())
        except ValueError:
            raise ConfigError(f"{keyhash}: not a bcrypt hash") from None
        if not ok:
            raise WrongPassphrase(
                f"wrong passphrase for {self.label} (from {source}): its keyhash says no",
                hint="the file backend's passphrase is the one typed at `inferenced keys add`",
            )

    # -- reading ------------------------------------------------------------------------------

    def _read(self, path: Path, *, missing_ok: bool = False) -> bytes | None:
        from gonka_cli.keys.files import read_regular

        try:
            return read_regular(path, MAX_ENTRY_BYTES)
        except FileNotFoundError:
            if missing_ok:
                return None
            raise
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the keyring file ({exc.strerror})") from None

    def _open(self, path: Path) -> bytes:
        raw = self._read(path)
        assert raw is not None
        try:
            return item_data(jwe_decrypt(raw.decode("ascii", "replace"), self.password()))
        except JWEError as exc:
            why = "wrong passphrase, or" if self.backend == "file" else "the file was"
            raise ConfigError(
                f"{path}: cannot decrypt this keyring entry ({exc}): {why} altered or truncated",
                hint="the other keys of the keyring are unaffected",
            ) from None

    def load(self, name: str) -> Entry | None:
        """The key called `name`, or None if the keyring has no such entry."""
        if not name or "\x00" in name:
            return None
        path = self.directory / entry_file_name(name)
        if not path.exists() and not path.is_symlink():
            return None
        return self._entry(path)

    def _entry(self, path: Path) -> Entry:
        data = self._open(path)
        try:
            record = records.decode(data)
        except records.ForeignKey as exc:
            raise ConfigError(
                f"{path}: the key is of type {exc.kind}; gonka signs only with "
                "secp256k1 keys (/cosmos.crypto.secp256k1.PrivKey)",
                hint="Gonka accounts use secp256k1; choose another key",
            ) from None
        except records.RecordError as exc:
            raise ConfigError(f"{path}: unreadable key record ({exc})") from None
        assert record.secret is not None
        address = address_from_public_key(record.public_key)
        name = unquote(path.name[: -len(".info")])
        return Entry(name, address, record.public_key, record.secret, record.encoding, path)

    def find_by_address(self, address: str) -> Entry | None:
        """The key with this address: through its ``.address`` file, else by reading all."""
        pointer = self.directory / f"{address_bytes(address).hex()}.address"
        if pointer.is_file():
            try:
                target = self._open(pointer).decode("utf-8")
            except (ConfigError, UnicodeDecodeError):
                target = ""
            if target.endswith(".info"):
                path = self.directory / entry_file_name(target[: -len(".info")])
                if path.is_file():
                    entry = self._entry(path)
                    if entry.address == address:
                        return entry
        return next((entry for entry in self.scan()[0] if entry.address == address), None)

    def find(self, wanted: str) -> Entry | None:
        """A key by address (``gonka1...``) or by name; None when the keyring has none."""
        if wanted.lower().startswith("gonka1"):
            from gonka_cli.keys.material import parse_address

            return self.find_by_address(parse_address(wanted))
        return self.load(wanted)

    def scan(self) -> tuple[list[Entry], list[ConfigError]]:
        """Every usable key (sorted by name), and one error per entry that is not."""
        entries: list[Entry] = []
        problems: list[ConfigError] = []
        paths = sorted(self.directory.glob("*.info")) if self.exists() else []
        for path in paths:
            try:
                entries.append(self._entry(path))
            except WrongPassphrase:
                raise
            except ConfigError as problem:
                problems.append(problem)
        return sorted(entries, key=lambda entry: entry.name), problems

    # -- writing ------------------------------------------------------------------------------

    def add(self, name: str, key: SigningKey, *, force: bool, now: datetime | None = None) -> Entry:
        """Write ``<name>.info`` (protobuf Record) and ``<hex>.address`` as `inferenced` does."""
        from gonka_cli.keys.keystore import validate_name, write_atomic
        from gonka_cli.paths import ensure_private_dir

        validate_name(name)
        path = self.directory / entry_file_name(name)
        if path.exists() and not force:
            raise ConfigError(
                f"{self.label} already has a key named {name!r}",
                hint="pass --force to replace it (its old secret is then gone)",
            )
        twin = self.find_by_address(key.address) if self.exists() else None
        if twin is not None and twin.name != name:
            raise ConfigError(f"key {twin.name!r} of {self.label} already holds {key.address}")
        ensure_private_dir(self.directory)
        self._ensure_keyhash()
        created = go_time(now or datetime.now(UTC))
        record = records.encode_protobuf(name, key.public_key, key.secret)
        hex_name = f"{address_bytes(key.address).hex()}.address"
        info = jwe_encrypt(item_json(f"{name}.info", record), self.password(), created=created)
        pointer = jwe_encrypt(
            item_json(hex_name, f"{name}.info".encode()), self.password(), created=created
        )
        try:
            write_atomic(path, info.encode(), overwrite=force)
            write_atomic(self.directory / hex_name, pointer.encode(), overwrite=True)
        except OSError as exc:
            raise ConfigError(f"{self.directory}: cannot write the keyring ({exc})") from None
        return self._entry(path)

    def _ensure_keyhash(self) -> None:
        """The file backend's keyhash: checked when present, written with a new passphrase."""
        keyhash = self.directory / KEYHASH
        if self.backend != "file" or self._password is not None:
            return
        if keyhash.exists():
            self.password()
            return
        import bcrypt

        from gonka_cli.keys.keystore import passphrase_to_create, write_atomic

        given = passphrase_to_create(self.passphrase_file)
        chosen = given.value
        hashed = bcrypt.hashpw(chosen.encode(), bcrypt.gensalt(KEYHASH_COST, prefix=b"2a"))
        try:
            write_atomic(keyhash, hashed, overwrite=False)
        except FileExistsError:  # another `keys add` made the keyring meanwhile: check with it
            self._check_keyhash(chosen, given.source)
        except OSError as exc:
            why = f"{self.directory}: cannot write the keyring ({exc.strerror})"
            raise ConfigError(why) from None
        self._password = chosen

    def delete(self, entry: Entry) -> None:
        """Remove a key's ``.info`` and its ``.address`` file."""
        pointer = self.directory / f"{address_bytes(entry.address).hex()}.address"
        entry.path.unlink()
        pointer.unlink(missing_ok=True)
