"""The inferenced keyring and armored exports: real keyring files, real processes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bcrypt
import bech32
import pytest

from gonka_cli.keys import SigningKey, address_bytes, hd
from gonka_cli.signing import Scheme, verify_with_address
from tests import keyring_reader as reader
from tests import vectors as v

FIXTURES = Path(__file__).parent / "fixtures" / "keyring"
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
TRANSFER = v.PUBKEY_ADDRESS
STATED_ALICE = "cosmos1am3fnp5dd6nndk5jyjq9mpqh3yvt2jmmdv83xn"  # b9-checkers Dockerfile-standalone


def gonka(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A real `gonka` process with the test's environment (HOME isolated by conftest)."""
    full = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gonka_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )


def copy_fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(("folder", "count"), [("perpilize", 1), ("localorai", 2), ("vagchain", 2)])
def test_keys_list_matches_the_address_file_names(folder: str, count: int, tmp_path: Path) -> None:
    """keys list over a real keyring-test folder: each address's 20 bytes are the hex name
    of an .address file written by the Cosmos binary, which names that key's .info."""
    base = copy_fixture(folder, tmp_path)
    done = gonka(
        "keys", "list", "--keyring-backend", "test", "--keyring-dir", str(base), "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    keys = json.loads(done.stdout)
    assert len(keys) == count
    for key in keys:
        pointer = base / "keyring-test" / f"{address_bytes(key['address']).hex()}.address"
        _, item = reader.open_token(pointer.read_text(), "test")
        assert base64.b64decode(item["Data"]) == f"{key['name']}.info".encode()


def test_records_are_protobuf_and_amino(tmp_path: Path) -> None:
    """The fixtures cover both encodings, and gonka reports which it read."""
    seen = {}
    for folder in ("perpilize", "localorai"):
        done = gonka(
            "keys",
            "list",
            "--keyring-backend",
            "test",
            "--keyring-dir",
            str(FIXTURES / folder),
            "-o",
            "json",
        )
        seen[folder] = {key["record"] for key in json.loads(done.stdout)}
    assert seen == {"perpilize": {"protobuf"}, "localorai": {"amino"}}


def test_sign_with_a_keyring_key_verifies_and_account_address_picks_the_same(
    tmp_path: Path,
) -> None:
    """gonka sign --key NAME over a real keyring signs for that key's address; so does
    --account-address, and the signature verifies for that address."""
    base = copy_fixture("localorai", tmp_path)
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    listed = json.loads(
        gonka(
            "keys", "list", "--keyring-backend", "test", "--keyring-dir", str(base), "-o", "json"
        ).stdout
    )
    test1 = next(key["address"] for key in listed if key["name"] == "test1")
    common = [
        "--keyring-backend",
        "test",
        "--keyring-dir",
        str(base),
        "--file",
        str(body),
        "--timestamp",
        "1700000000000000000",
        "--endpoint-account",
        TRANSFER,
    ]
    by_name = gonka("sign", *common, "--key", "test1")
    by_address = gonka("sign", *common, "--account-address", test1)
    by_from = gonka("sign", *common, "--from", "test1")
    assert by_name.returncode == by_address.returncode == by_from.returncode == 0, by_name.stderr
    signature = by_name.stdout.strip()
    assert by_address.stdout.strip() == by_from.stdout.strip() == signature
    verify_with_address(test1, signature, BODY, 1700000000000000000, TRANSFER, Scheme.HASH)


def test_file_backend_with_keyhash_and_its_mnemonic(tmp_path: Path) -> None:
    """The real file keyring opens with its passphrase (keyhash checked), and its key is the
    one the published mnemonic derives at Cosmos' coin type 118; a wrong one is exit 7."""
    base = copy_fixture("b9-checkers", tmp_path) / "keys"
    args = ["keys", "show", "alice", "--keyring-backend", "file", "--keyring-dir", str(base), "-a"]
    done = gonka(*args, env={"GONKA_KEYRING_PASSPHRASE": "password"})
    assert done.returncode == 0, done.stderr
    words = (FIXTURES / "b9-checkers" / "mnemonic-alice.txt").read_text()
    derived = hd.derive_path(hd.mnemonic_to_seed(hd.check_mnemonic(words)), "m/44'/118'/0'/0/0")
    assert done.stdout.strip() == SigningKey.from_secret(derived.secret).address
    assert address_bytes(done.stdout.strip()).hex() == "790b9ff9ddaa0930586533db08d2d3bc8522baf0"
    wrong = gonka(*args, env={"GONKA_KEYRING_PASSPHRASE": "not-it"})
    assert wrong.returncode == 7
    assert "wrong passphrase" in one_error_line(wrong)


def test_foreign_key_type_is_refused_naming_it(tmp_path: Path) -> None:
    """An ethsecp256k1 entry (a real one) exits 7 with one line naming its type."""
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    done = gonka(
        "sign",
        "--keyring-backend",
        "test",
        "--keyring-dir",
        str(FIXTURES / "berachain"),
        "--key",
        "validator",
        "--file",
        str(body),
    )
    assert done.returncode == 7
    assert "ethsecp256k1" in one_error_line(done)
    listed = gonka(
        "keys",
        "list",
        "--keyring-backend",
        "test",
        "--keyring-dir",
        str(FIXTURES / "berachain"),
        "-o",
        "json",
    )
    assert listed.returncode == 0
    assert json.loads(listed.stdout) == []
    assert listed.stderr.count("ethsecp256k1") == 2


def test_tampered_entry_fails_alone(tmp_path: Path) -> None:
    """A flipped byte breaks the GCM tag of one entry: a clear exit 7 for it, and the other
    key of the keyring still lists and signs."""
    base = copy_fixture("localorai", tmp_path)
    info = base / "keyring-test" / "validator.info"
    token = info.read_text()
    middle = len(token) - 30
    info.write_text(token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :])
    body = tmp_path / "b.json"
    body.write_bytes(BODY)
    kr = ["--keyring-backend", "test", "--keyring-dir", str(base)]
    bad = gonka("sign", *kr, "--key", "validator", "--file", str(body))
    assert bad.returncode == 7
    assert "cannot decrypt" in one_error_line(bad)
    good = gonka("sign", *kr, "--key", "test1", "--file", str(body))
    assert good.returncode == 0, good.stderr
    listed = gonka("keys", "list", *kr, "-o", "json")
    assert [key["name"] for key in json.loads(listed.stdout)] == ["test1"]
    assert "validator.info" in listed.stderr


def test_wrong_file_password_without_keyhash_is_exit_7(tmp_path: Path) -> None:
    """Without a keyhash, a wrong file-backend password fails the cipher: exit 7, one line."""
    base = copy_fixture("b9-checkers", tmp_path) / "keys"
    (base / "keyring-file" / "keyhash").unlink()
    done = gonka(
        "keys",
        "export",
        "alice",
        "--unsafe",
        "--keyring-backend",
        "file",
        "--keyring-dir",
        str(base),
        env={"GONKA_KEYRING_PASSPHRASE": "nope"},
    )
    assert done.returncode == 7
    assert "wrong passphrase" in one_error_line(done)


def test_info_without_address_file_and_odd_names(tmp_path: Path) -> None:
    """Entries written by an independent writer with odd names and no .address file are
    listed and found by name and by address."""
    folder = tmp_path / "keyring-test"
    folder.mkdir()
    names = ["my key/ü%", "with space"]
    keys = {name: SigningKey.from_secret(bytes([i + 1]) * 32) for i, name in enumerate(names)}
    for name, key in keys.items():
        data = reader.record(name, key.public_key, key.secret)
        file_name = f"{name}.info".replace("%", "%25").replace("/", "%2F")
        (folder / file_name).write_text(
            reader.seal_token(reader.item(f"{name}.info", data), "test")
        )
    kr = ["--keyring-backend", "test", "--keyring-dir", str(tmp_path)]
    listed = json.loads(gonka("keys", "list", *kr, "-o", "json").stdout)
    assert {key["name"]: key["address"] for key in listed} == {
        n: k.address for n, k in keys.items()
    }
    shown = gonka("keys", "show", keys["my key/ü%"].address, *kr, "-o", "json")
    assert json.loads(shown.stdout)["name"] == "my key/ü%"
    by_name = gonka("keys", "show", "my key/ü%", *kr, "-a")
    assert by_name.stdout.strip() == keys["my key/ü%"].address


@pytest.mark.parametrize("backend", ["test", "file"])
def test_keys_add_recover_writes_what_an_independent_reader_opens(
    backend: str, tmp_path: Path
) -> None:
    """`keys add --recover` into the keyring writes <name>.info and <hex>.address that the
    independent reader decrypts to a protobuf Record with the docs/protocol.md address; the file
    backend also gets a keyhash that bcrypt accepts for the chosen password."""
    password = "test" if backend == "test" else "Chosen-Pass-42"
    env = {} if backend == "test" else {"GONKA_KEYRING_PASSPHRASE": password}
    done = gonka(
        "keys",
        "add",
        "demo",
        "--recover",
        "--keyring-backend",
        backend,
        "--keyring-dir",
        str(tmp_path),
        stdin=v.MNEMONIC + "\n",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == v.PRIVATE_KEY_ADDRESS
    folder = tmp_path / f"keyring-{backend}"
    _, item = reader.open_token((folder / "demo.info").read_text(), password)
    name, public_key, secret = reader.read_record(base64.b64decode(item["Data"]))
    assert (name, secret.hex()) == ("demo", v.PRIVATE_KEY_HEX)
    hex_name = reader.address_hex(public_key)
    assert hex_name == address_bytes(v.PRIVATE_KEY_ADDRESS).hex()
    _, pointer = reader.open_token((folder / f"{hex_name}.address").read_text(), password)
    assert base64.b64decode(pointer["Data"]) == b"demo.info"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())
    if backend == "file":
        assert bcrypt.checkpw(password.encode(), (folder / "keyhash").read_bytes())


def test_real_armored_export_imports_to_the_stated_address(tmp_path: Path) -> None:
    """The armored export published with its passphrase imports to the address the same
    repository states (same 20 bytes, in gonka's prefix)."""
    passfile = tmp_path / "p"
    passfile.write_text("password\n")
    done = gonka(
        "keys",
        "import",
        "alice",
        str(FIXTURES / "b9-checkers" / "alice-export.asc"),
        "--armor-passphrase-file",
        str(passfile),
        "--unencrypted",
    )
    assert done.returncode == 0, done.stderr
    _, words = bech32.bech32_decode(STATED_ALICE)
    assert words is not None
    assert address_bytes(done.stdout.strip()) == bytes(bech32.convertbits(words, 5, 8, False) or [])
    passfile.write_text("wrong\n")
    wrong = gonka(
        "keys",
        "import",
        "bob",
        str(FIXTURES / "b9-checkers" / "alice-export.asc"),
        "--armor-passphrase-file",
        str(passfile),
        "--unencrypted",
    )
    assert wrong.returncode == 7
    assert "wrong passphrase" in one_error_line(wrong)


def test_export_armor_opens_with_the_independent_reader(tmp_path: Path) -> None:
    """keys export --armor writes a block that the independent bcrypt+secretbox reader opens."""
    kr = ["--keyring-backend", "test", "--keyring-dir", str(tmp_path)]
    assert gonka("keys", "add", "demo", "--recover", *kr, stdin=v.MNEMONIC + "\n").returncode == 0
    passfile = tmp_path / "armor-pass"
    passfile.write_text("Armor-Pass-1\n")
    done = gonka("keys", "export", "demo", "--armor", "--armor-passphrase-file", str(passfile), *kr)
    assert done.returncode == 0, done.stderr
    assert reader.armor_secret(done.stdout, "Armor-Pass-1").hex() == v.PRIVATE_KEY_HEX
    assert v.PRIVATE_KEY_HEX not in done.stdout + done.stderr


def test_account_address_falls_back_to_the_default_test_keyring(tmp_path: Path) -> None:
    """send-request --account-address with the address only in ~/.inference/keyring-test
    signs with it and says on stderr which keyring it used (dry run: nothing is sent)."""
    home = Path(os.environ["HOME"])
    shutil.copytree(FIXTURES / "perpilize" / "keyring-test", home / ".inference" / "keyring-test")
    body = tmp_path / "req.json"
    body.write_text('{"model":"m","messages":[{"role":"user","content":"hi"}]}')
    address = "gonka1xzjrz85utm6jclf84hkfywke3nmemea3ehat8u"
    assert address_bytes(address).hex() == "30a4311e9c5ef52c7d27adec923ad98cf79de7b1"
    done = gonka(
        "send-request",
        "--account-address",
        address,
        "--node-address",
        "http://127.0.0.1:9",
        "--endpoint-account",
        TRANSFER,
        "--file",
        str(body),
        "--dry-run",
        env={"GONKA_HOME": str(tmp_path / "gonka")},
    )
    assert done.returncode == 0, done.stderr
    assert f"X-Requester-Address: {address}" in done.stdout
    assert str(home / ".inference" / "keyring-test") in done.stderr


def test_unsupported_backends_say_how_to_export(tmp_path: Path) -> None:
    """os, kwallet and pass get one line saying to export the key instead."""
    for backend in ("os", "kwallet", "pass"):
        done = gonka("keys", "list", "--keyring-backend", backend, "--keyring-dir", str(tmp_path))
        assert done.returncode == 7
        assert backend in one_error_line(done)
        assert "keys export" in done.stderr
