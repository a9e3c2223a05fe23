"""The encrypted keystore (keys.keystore) and the signing-key order (keys.selection)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.errors import ConfigError, ExitCode, UsageError
from gonka_cli.keys import SigningKey, keystore
from gonka_cli.keys.keystore import KeyMaterial, Keystore, StoredKey
from gonka_cli.keys.selection import resolve_signing_key, signing_key_configured
from tests import vectors as v
from tests.keystore_helpers import Prompts, isolate_keystore

STRONG_N = keystore.SCRYPT_N  # read before any fixture lowers it
REAL_READ_HIDDEN = keystore.read_hidden  # before the fixture replaces it
KEY_B = "11" * 32
KEY_C = "22" * 32
KEY_D = "33" * 32
CREATED = "2026-01-01T00:00:00+00:00"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own fast keystore and no GONKA_* variables."""
    yield from isolate_keystore(monkeypatch, tmp_path)


def _add(
    name: str,
    key_hex: str,
    *,
    passphrase: str | None = "pw",  # noqa: S107 - the tests' fixed passphrase
    mnemonic: str | None = None,
    force: bool = False,
) -> StoredKey:
    key = SigningKey.from_hex(key_hex)
    document = keystore.build_document(
        name,
        key,
        KeyMaterial(key.secret, mnemonic),
        passphrase=passphrase,
        hd_path=None,
        created=CREATED,
    )
    return Keystore.default().add(document, force=force)


def _temp_files(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir() if path.name.endswith(".tmp")]


# ---- the file format ---------------------------------------------------------------------


def test_encrypted_round_trip_and_clear_fields() -> None:
    """A key and its mnemonic come back with the passphrase; name, address, pubkey are clear."""
    stored = _add("demo", v.PRIVATE_KEY_HEX, mnemonic=v.MNEMONIC)
    loaded = Keystore.default().load("demo")
    assert (loaded.name, loaded.address, loaded.pubkey) == (
        "demo",
        v.PRIVATE_KEY_ADDRESS,
        v.PRIVATE_KEY_PUBKEY_B64,
    )
    assert loaded.encrypted
    material = keystore.open_key(loaded, keystore.Passphrase("pw", "test"))
    assert material.secret.hex() == v.PRIVATE_KEY_HEX
    assert material.mnemonic == v.MNEMONIC
    document = json.loads(stored.path.read_text())
    assert document["format"] == "gonka-keystore"
    assert document["version"] == 1
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["cipher"] == "aes-256-gcm"
    assert document["crypto"]["kdfparams"]["n"] == 2**4


def test_key_file_holds_no_secret_text() -> None:
    """The file holds neither the hex key (any case) nor the mnemonic nor any of its words."""
    stored = _add("demo", v.PRIVATE_KEY_HEX, mnemonic=v.MNEMONIC)
    text = stored.path.read_text().lower()
    assert v.PRIVATE_KEY_HEX not in text
    for word in set(v.MNEMONIC.split()):
        assert word not in text


def test_production_kdf_is_strong() -> None:
    """New files cost scrypt n >= 2^15 with r=8 unless a test lowers it on purpose."""
    assert STRONG_N >= 2**15
    assert keystore.SCRYPT_R == 8


def test_file_and_directory_modes(tmp_path: Path) -> None:
    """Key files and the default pointer are 0600, the keys directory and the gonka directory
    it created 0700, whatever the umask."""
    old = os.umask(0)
    try:
        stored = _add("demo", v.PRIVATE_KEY_HEX)
        Keystore.default().set_default("demo")
    finally:
        os.umask(old)
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((stored.path.parent / "default_key").stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(stored.path.parent.parent.stat().st_mode) == 0o700


def test_wrong_passphrase_is_detected_by_the_cipher() -> None:
    """A wrong passphrase is a ConfigError (exit 7) naming the key and the source, not the value."""
    _add("demo", v.PRIVATE_KEY_HEX, passphrase="right horse")
    stored = Keystore.default().load("demo")
    with pytest.raises(ConfigError) as caught:
        keystore.open_key(stored, keystore.Passphrase("wrong horse", "$X"))
    assert caught.value.exit_code is ExitCode.CONFIG
    assert "wrong passphrase for key 'demo' (from $X)" in caught.value.message
    assert "horse" not in caught.value.message


def test_an_edited_clear_address_does_not_open() -> None:
    """The address is authenticated data: editing it in the file makes decryption fail."""
    stored = _add("demo", v.PRIVATE_KEY_HEX)
    document = json.loads(stored.path.read_text())
    document["address"] = v.PUBKEY_ADDRESS
    stored.path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="wrong passphrase"):
        keystore.open_key(Keystore.default().load("demo"), keystore.Passphrase("pw", "test"))


def test_an_edited_public_key_is_reported_as_corrupt() -> None:
    """A public key that does not belong to the secret inside is a corrupt file."""
    stored = _add("demo", v.PRIVATE_KEY_HEX)
    document = json.loads(stored.path.read_text())
    document["pubkey"] = v.PUBKEY_B64
    stored.path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="does not match"):
        keystore.open_key(Keystore.default().load("demo"), keystore.Passphrase("pw", "test"))


def test_unencrypted_file_opens_without_passphrase() -> None:
    """An --unencrypted file holds the key in its plaintext section and needs no passphrase."""
    stored = _add("ci", v.PRIVATE_KEY_HEX, passphrase=None)
    loaded = Keystore.default().load("ci")
    assert not loaded.encrypted
    assert json.loads(stored.path.read_text())["crypto"]["cipher"] == "none"
    assert keystore.open_key(loaded, None).secret.hex() == v.PRIVATE_KEY_HEX


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a gonka-keystore file"),
        (b'{"format": "gonka-keystore", "version": 1}', "'crypto'"),
    ],
)
def test_corrupt_files_name_the_file(content: bytes, problem: str) -> None:
    """Garbage, empty or incomplete files give a ConfigError naming the file and the problem."""
    _add("good", v.PRIVATE_KEY_HEX)
    bad = Keystore.default().directory / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        Keystore.default().load("bad")
    assert str(bad) in caught.value.message
    assert problem in caught.value.message
    assert caught.value.hint is not None


def test_a_truncated_file_leaves_the_other_keys_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A half-written file is reported by scan and load; other keys still list and sign."""
    good = _add("good", v.PRIVATE_KEY_HEX)
    bad = _add("bad", KEY_B)
    bad.path.write_bytes(bad.path.read_bytes()[:200])
    keys, problems = Keystore.default().scan()
    assert [key.name for key in keys] == ["good"]
    assert len(problems) == 1
    assert str(bad.path) in problems[0].message
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "pw")
    assert resolve_signing_key(key="good").address == good.address
    with pytest.raises(ConfigError, match="corrupt key file"):
        resolve_signing_key(key="bad")


def test_newer_format_versions_ask_for_an_upgrade() -> None:
    """A file of a future format version says so instead of guessing."""
    stored = _add("demo", v.PRIVATE_KEY_HEX)
    document = json.loads(stored.path.read_text())
    document["version"] = 2
    stored.path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        Keystore.default().load("demo")
    assert "version 2" in caught.value.message
    assert caught.value.hint == "upgrade gonka-cli"


@pytest.mark.parametrize(
    "params",
    [
        {"n": 2**30, "r": 8, "p": 1, "salt": "00"},
        {"n": 1000, "r": 8, "p": 1, "salt": "00"},
        {"n": 16, "r": "8", "p": 1, "salt": "00"},
        {"n": 16, "r": 8, "p": 1},
    ],
)
def test_bad_scrypt_parameters_are_refused_before_running(params: dict[str, object]) -> None:
    """Absurd or malformed KDF parameters are a corrupt file, not a 100 GiB allocation."""
    stored = _add("demo", v.PRIVATE_KEY_HEX)
    document = json.loads(stored.path.read_text())
    document["crypto"]["kdfparams"] = params
    stored.path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="scrypt parameters"):
        keystore.open_key(Keystore.default().load("demo"), keystore.Passphrase("pw", "test"))


# ---- writing -------------------------------------------------------------------------------


def test_existing_keys_are_replaced_only_with_force() -> None:
    """Adding a name that exists fails unless force; with force the new key replaces it."""
    _add("demo", v.PRIVATE_KEY_HEX)
    with pytest.raises(ConfigError, match="already exists") as caught:
        _add("demo", KEY_B)
    assert caught.value.hint is not None
    assert "--force" in caught.value.hint
    assert Keystore.default().load("demo").address == v.PRIVATE_KEY_ADDRESS
    _add("demo", KEY_B, force=True)
    assert Keystore.default().load("demo").address == SigningKey.from_hex(KEY_B).address


def test_one_address_is_stored_under_one_name() -> None:
    """A second name for an address already stored is refused."""
    _add("demo", v.PRIVATE_KEY_HEX)
    with pytest.raises(ConfigError, match="'demo' already holds the address"):
        _add("again", v.PRIVATE_KEY_HEX)


def test_a_crash_before_the_rename_leaves_the_old_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """If os.replace fails, the old key file is byte for byte intact and no temp file is left."""
    stored = _add("demo", v.PRIVATE_KEY_HEX)
    before = stored.path.read_bytes()

    def crash(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ConfigError, match="cannot write the key file"):
        _add("demo", KEY_B, force=True)
    assert stored.path.read_bytes() == before
    assert _temp_files(stored.path.parent) == []


def test_a_crash_mid_write_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing or fsync fails, neither the new file nor a temp file exists afterwards."""
    directory = Keystore.default().directory
    directory.mkdir(parents=True)

    def crash(_fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(ConfigError, match="cannot write the key file"):
        _add("demo", v.PRIVATE_KEY_HEX)
    assert list(directory.iterdir()) == []


def test_write_atomic_refuses_to_clobber(tmp_path: Path) -> None:
    """Without overwrite, an existing file stays and FileExistsError is raised."""
    target = tmp_path / "file"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        keystore.write_atomic(target, b"new", overwrite=False)
    assert target.read_bytes() == b"old"
    assert _temp_files(tmp_path) == []


def test_rename_and_delete_keep_the_default_pointer_right() -> None:
    """Renaming the default key moves the default; deleting it clears the default."""
    store = Keystore.default()
    _add("demo", v.PRIVATE_KEY_HEX)
    _add("other", KEY_B)
    store.set_default("demo")
    renamed = store.rename("demo", "main", force=False)
    assert store.default_name() == "main"
    assert not (store.directory / "demo.json").exists()
    material = keystore.open_key(renamed, keystore.Passphrase("pw", "test"))
    assert material.secret.hex() == v.PRIVATE_KEY_HEX
    with pytest.raises(ConfigError, match="already exists"):
        store.rename("main", "other", force=False)
    store.delete("main")
    assert store.default_name() is None
    assert [key.name for key in store.scan()[0]] == ["other"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "gonka1abc", "x" * 65, "a b"])
def test_unsafe_names_are_refused(name: str) -> None:
    """Names that could escape the directory, hide, or pass for an address are refused."""
    with pytest.raises(UsageError):
        keystore.validate_name(name)


# ---- passphrases ---------------------------------------------------------------------------


def test_passphrase_sources_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--passphrase-file beats $GONKA_KEYRING_PASSPHRASE, which beats the prompt."""
    prompts = Prompts("typed")
    monkeypatch.setattr(keystore, "read_hidden", prompts)
    secret_file = tmp_path / "pass"
    secret_file.write_text("from file\n")
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "from env")
    assert keystore.passphrase_to_open("k", str(secret_file)).value == "from file"
    assert keystore.passphrase_to_open("k").value == "from env"
    monkeypatch.delenv("GONKA_KEYRING_PASSPHRASE")
    assert keystore.passphrase_to_open("k").value == "typed"
    assert prompts.asked == ["Passphrase for key 'k': "]


def test_the_prompt_is_asked_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stored keys opened in one process cost one prompt."""
    _add("one", v.PRIVATE_KEY_HEX)
    _add("two", KEY_B)
    prompts = Prompts("pw")
    monkeypatch.setattr(keystore, "read_hidden", prompts)
    assert resolve_signing_key(key="one").address == v.PRIVATE_KEY_ADDRESS
    assert resolve_signing_key(key="two").to_hex() == KEY_B
    assert len(prompts.asked) == 1


def test_creating_asks_twice_and_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new passphrase is confirmed; a mismatch or an empty one stores nothing."""
    monkeypatch.setattr(keystore, "read_hidden", Prompts("abc", "abd"))
    with pytest.raises(ConfigError, match="differ"):
        keystore.passphrase_to_create()
    monkeypatch.setattr(keystore, "read_hidden", Prompts(""))
    with pytest.raises(ConfigError, match="empty passphrase"):
        keystore.passphrase_to_create()
    prompts = Prompts("abc", "abc")
    monkeypatch.setattr(keystore, "read_hidden", prompts)
    assert keystore.passphrase_to_create().value == "abc"
    assert len(prompts.asked) == 2


def test_empty_or_missing_passphrase_file(tmp_path: Path) -> None:
    """An empty or unreadable passphrase file is a ConfigError naming it."""
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        keystore.passphrase_to_open("k", str(empty))
    with pytest.raises(ConfigError, match="cannot read"):
        keystore.passphrase_to_open("k", str(tmp_path / "missing"))


def test_no_terminal_and_no_passphrase_explains_the_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a terminal, the real prompt refuses and names the environment variable."""

    def no_tty(*_args: object) -> None:
        raise OSError(6, "No such device or address")

    monkeypatch.setattr(keystore, "open", no_tty, raising=False)  # shadows the builtin
    with pytest.raises(ConfigError) as caught:
        REAL_READ_HIDDEN("Passphrase: ")
    assert caught.value.hint is not None
    assert "GONKA_KEYRING_PASSPHRASE" in caught.value.hint


# ---- which key signs -----------------------------------------------------------------------


@pytest.fixture
def four_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Stored keys A (default) and B, GONKA_PRIVATE_KEY = C, and a key file holding D."""
    _add("a", v.PRIVATE_KEY_HEX)
    _add("b", KEY_B)
    Keystore.default().set_default("a")
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "pw")
    monkeypatch.setenv("GONKA_PRIVATE_KEY", KEY_C)
    key_file = tmp_path / "key.hex"
    key_file.write_text(KEY_D + "\n")
    return str(key_file)


def test_selection_order(four_sources: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--key, --account-address, GONKA_PRIVATE_KEY, --private-key-file, the default: in order."""
    address_b = SigningKey.from_hex(KEY_B).address
    assert resolve_signing_key(key="b", private_key_file=four_sources).to_hex() == KEY_B
    assert resolve_signing_key(key=address_b).to_hex() == KEY_B
    assert resolve_signing_key(account_address=address_b).to_hex() == KEY_B
    assert resolve_signing_key(private_key_file=four_sources).to_hex() == KEY_C
    monkeypatch.delenv("GONKA_PRIVATE_KEY")
    assert resolve_signing_key(private_key_file=four_sources).to_hex() == KEY_D
    assert resolve_signing_key().to_hex() == v.PRIVATE_KEY_HEX


def test_nothing_configured_names_every_option() -> None:
    """With no key anywhere, the error's hint lists the ways to give one."""
    with pytest.raises(ConfigError, match="no signing key") as caught:
        resolve_signing_key()
    hint = caught.value.hint or ""
    for option in ("--key", "--account-address", "GONKA_PRIVATE_KEY", "--private-key-file"):
        assert option in hint
    assert "gonka keys add" in hint


def test_gonka_address_must_match_the_chosen_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """GONKA_ADDRESS equal to the key's address passes; another address or garbage is an error."""
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    monkeypatch.setenv("GONKA_ADDRESS", v.PRIVATE_KEY_ADDRESS)
    assert resolve_signing_key().address == v.PRIVATE_KEY_ADDRESS
    monkeypatch.setenv("GONKA_ADDRESS", v.PUBKEY_ADDRESS)
    with pytest.raises(ConfigError) as caught:
        resolve_signing_key()
    assert v.PUBKEY_ADDRESS in caught.value.message
    assert v.PRIVATE_KEY_ADDRESS in caught.value.message
    assert caught.value.exit_code is ExitCode.CONFIG
    monkeypatch.setenv("GONKA_ADDRESS", "gonka1notanaddress")
    with pytest.raises(ConfigError, match="GONKA_ADDRESS"):
        resolve_signing_key()


def test_gonka_address_mismatch_is_found_before_any_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored key whose clear address disagrees is refused without asking for its passphrase."""
    _add("demo", v.PRIVATE_KEY_HEX)
    monkeypatch.setenv("GONKA_ADDRESS", v.PUBKEY_ADDRESS)
    with pytest.raises(ConfigError, match="GONKA_ADDRESS"):
        resolve_signing_key(key="demo")  # the fixture's prompt would fail if asked
    with pytest.raises(ConfigError, match="--account-address"):
        resolve_signing_key(key="demo", account_address=SigningKey.from_hex(KEY_B).address)


def test_account_address_without_a_stored_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """--account-address not in the store: the next source must have that address."""
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    chosen = resolve_signing_key(account_address=v.PRIVATE_KEY_ADDRESS)
    assert chosen.to_hex() == v.PRIVATE_KEY_HEX
    with pytest.raises(ConfigError, match="--account-address"):
        resolve_signing_key(account_address=v.PUBKEY_ADDRESS)
    monkeypatch.delenv("GONKA_PRIVATE_KEY")
    with pytest.raises(ConfigError, match="no stored key has the address"):
        resolve_signing_key(account_address=v.PUBKEY_ADDRESS)
    with pytest.raises(UsageError, match="--account-address"):
        resolve_signing_key(account_address="gonka1bad")


def test_unknown_key_name_is_a_config_error() -> None:
    """--key naming no stored key says so and points at `gonka keys list`."""
    with pytest.raises(ConfigError, match="no key named 'nope'") as caught:
        resolve_signing_key(key="nope")
    assert caught.value.hint == "see `gonka keys list`"


def test_unencrypted_stored_key_warns_at_each_use(capsys: pytest.CaptureFixture[str]) -> None:
    """Signing with an --unencrypted key works and warns on stderr every time."""
    _add("ci", v.PRIVATE_KEY_HEX, passphrase=None)
    for _ in range(2):
        assert resolve_signing_key(key="ci").address == v.PRIVATE_KEY_ADDRESS
    assert capsys.readouterr().err.count("UNENCRYPTED") == 2


def test_signing_key_configured_is_cheap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """It answers from flags, GONKA_PRIVATE_KEY and the default pointer, without prompting."""
    assert not signing_key_configured()
    assert signing_key_configured(key="x")
    assert signing_key_configured(account_address=v.PUBKEY_ADDRESS)
    assert signing_key_configured(private_key_file=str(tmp_path / "k"))
    _add("demo", v.PRIVATE_KEY_HEX)
    assert not signing_key_configured()
    Keystore.default().set_default("demo")
    assert signing_key_configured()
    Keystore.default().set_default(None)
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    assert signing_key_configured()
