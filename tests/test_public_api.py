"""The public Python API: lazy and typed, the keys and signatures of docs/protocol.md section 8,
and signing for clients nobody here wrote (requests, httpx2) against the dev node."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import requests
from typer.testing import CliRunner

import gonka_cli
from gonka_cli import (
    ConfigError,
    InvalidSignature,
    SignatureAuth,
    SigningKey,
    UsageError,
    load_key,
    signed_headers,
    verify,
)
from gonka_cli.cli import app
from gonka_cli.devnode import fault_sequence
from gonka_cli.pytest_plugin import GonkaNodeFactory
from tests import vectors as v
from tests.keystore_helpers import isolate_keystore

HEAVY = ("httpx2", "coincurve", "asyncio", "rich", "typer", "uvicorn", "starlette", "cryptography")
CHAT = json.dumps(
    {"model": "Qwen/QwQ-32B", "messages": [{"role": "user", "content": "Hi"}]}
).encode()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own fast keystore and no GONKA_* variables."""
    yield from isolate_keystore(monkeypatch, tmp_path)


def loaded_after(code: str) -> list[str]:
    """The heavy top-level modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return [name for name in HEAVY if f"'{name}'" in out]


# --- the package's face ------------------------------------------------------------------------


def test_importing_the_package_loads_nothing_heavy() -> None:
    """`import gonka_cli` (which `gonka sign` does too) loads no HTTP, curve or UI library."""
    assert loaded_after("import gonka_cli") == []


def test_a_public_name_loads_its_module_on_first_use() -> None:
    """Asking for GonkaTransport loads httpx2 then, and still no UI or server library."""
    assert loaded_after("import gonka_cli; gonka_cli.GonkaTransport") == ["httpx2", "coincurve"]


def test_every_public_name_resolves_and_is_listed() -> None:
    """Each name in __all__ is importable from the package; dir() shows them."""
    for name in gonka_cli.__all__:
        assert getattr(gonka_cli, name) is not None, name
    assert set(gonka_cli.__all__) <= set(dir(gonka_cli))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gonka_cli.nope  # type: ignore[attr-defined]  # noqa: B018


def test_the_package_ships_its_type_marker() -> None:
    """py.typed sits in the package, so a wheel carries it and type checkers use our hints."""
    assert (Path(gonka_cli.__file__).parent / "py.typed").is_file()


# --- keys --------------------------------------------------------------------------------------


def test_a_key_from_the_protocol_mnemonic() -> None:
    """The docs/protocol.md words at Gonka's path give its private key, public key and address."""
    key = SigningKey.from_mnemonic(v.MNEMONIC)
    assert key.to_hex() == v.PRIVATE_KEY_HEX
    assert key.public_key_b64 == v.PRIVATE_KEY_PUBKEY_B64
    assert len(key.public_key) == 33
    assert key.address == v.PRIVATE_KEY_ADDRESS
    cosmos = SigningKey.from_mnemonic(v.MNEMONIC, path="m/44'/118'/0'/0/0")
    assert cosmos.address == v.COSMOS_118_ADDRESS


def test_a_bad_mnemonic_is_refused_without_quoting_it() -> None:
    """A wrong checksum is a UsageError that does not repeat the words."""
    with pytest.raises(UsageError, match="checksum") as refused:
        SigningKey.from_mnemonic("test " * 11 + "test")
    assert "test test" not in str(refused.value)


def test_a_key_from_hex_in_any_pasted_form() -> None:
    """0x, upper case and whitespace are forgiven; the repr never shows the secret."""
    key = SigningKey.from_hex(f"  0x{v.PRIVATE_KEY_HEX.upper()}\n")
    assert key.address == v.PRIVATE_KEY_ADDRESS
    assert v.PRIVATE_KEY_HEX not in repr(key).lower()


def test_load_key_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """GONKA_PRIVATE_KEY gives the key; asking for its address agrees, another address does not."""
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    assert load_key().address == v.PRIVATE_KEY_ADDRESS
    assert load_key(v.PRIVATE_KEY_ADDRESS).address == v.PRIVATE_KEY_ADDRESS
    with pytest.raises(ConfigError, match=v.PUBKEY_ADDRESS):
        load_key(v.PUBKEY_ADDRESS)


def test_load_key_finds_stored_keys_as_the_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key added with `gonka keys add` is found by name, by address, and as the default."""
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "pw")
    added = CliRunner().invoke(app, ["keys", "add", "demo", "--recover"], input=v.MNEMONIC + "\n")
    assert added.exit_code == 0, added.stderr
    assert load_key("demo").to_hex() == v.PRIVATE_KEY_HEX
    assert load_key(v.PRIVATE_KEY_ADDRESS).to_hex() == v.PRIVATE_KEY_HEX
    assert load_key().to_hex() == v.PRIVATE_KEY_HEX


def test_load_key_without_any_key_says_how_to_get_one() -> None:
    """No stored key and no GONKA_PRIVATE_KEY: a ConfigError with the CLI's hint."""
    with pytest.raises(ConfigError, match="no signing key") as missing:
        load_key()
    assert missing.value.hint is not None
    assert "GONKA_PRIVATE_KEY" in missing.value.hint


# --- signed_headers and verify ----------------------------------------------------------------


def test_signed_headers_match_the_protocol_vectors() -> None:
    """Fixed time and address give docs/protocol.md's signatures for both schemes."""
    key = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
    headers = signed_headers(key, v.BODY, v.TRANSFER_ADDRESS, timestamp_ns=v.TIMESTAMP)
    assert headers == {
        "Content-Type": "application/json",
        "Authorization": v.SIG_HASH,
        "X-Requester-Address": v.PRIVATE_KEY_ADDRESS,
        "X-Timestamp": str(v.TIMESTAMP),
    }
    raw = signed_headers(key, v.BODY, v.TRANSFER_ADDRESS, timestamp_ns=v.TIMESTAMP, scheme="raw")
    assert raw["Authorization"] == v.SIG_RAW


def test_signed_headers_take_a_fresh_time_for_each_call() -> None:
    """Without a timestamp, two calls give increasing timestamps and different signatures."""
    key = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
    first = signed_headers(key, v.BODY, v.TRANSFER_ADDRESS)
    second = signed_headers(key, v.BODY, v.TRANSFER_ADDRESS)
    assert int(second["X-Timestamp"]) > int(first["X-Timestamp"])
    assert second["Authorization"] != first["Authorization"]


def test_signed_headers_refuse_bad_input() -> None:
    """A bad transfer address or scheme is a UsageError, not a wrong signature."""
    key = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
    with pytest.raises(UsageError, match="bech32"):
        signed_headers(key, v.BODY, "gonka1nope")
    with pytest.raises(UsageError, match="hash or raw"):
        signed_headers(key, v.BODY, v.TRANSFER_ADDRESS, scheme="sha3")


def test_verify_accepts_the_vector_and_says_why_it_refuses() -> None:
    """The vector verifies by address and by public key; high-S and a wrong signer do not."""

    def check(signature: str, body: bytes = v.BODY, address: str | None = None) -> None:
        verify(body, signature, address=address or v.PRIVATE_KEY_ADDRESS,
               timestamp_ns=v.TIMESTAMP, transfer_address=v.TRANSFER_ADDRESS)  # fmt: skip

    check(v.SIG_HASH)
    verify(v.BODY, v.SIG_HASH, public_key=v.PRIVATE_KEY_PUBKEY_B64,
           timestamp_ns=v.TIMESTAMP, transfer_address=v.TRANSFER_ADDRESS)  # fmt: skip
    with pytest.raises(InvalidSignature, match="high-S"):
        check(v.SIG_HASH_HIGH_S)
    with pytest.raises(InvalidSignature, match="not made by"):
        check(v.SIG_HASH, address=v.PUBKEY_ADDRESS)
    with pytest.raises(InvalidSignature):
        check(v.SIG_HASH, body=v.BODY + b" ")
    with pytest.raises(UsageError, match="exactly one"):
        verify(v.BODY, v.SIG_HASH)


def test_signature_auth_takes_the_scheme_by_name() -> None:
    """SignatureAuth(scheme="raw") signs the raw layout (a name must not fall back to hash)."""
    key = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
    auth = SignatureAuth(key, v.TRANSFER_ADDRESS, scheme="raw", timestamp_ns=lambda: v.TIMESTAMP)
    request = httpx2.Request("POST", "http://ta.invalid/v1/chat/completions", content=v.BODY)
    signed = next(auth.sync_auth_flow(request))
    assert signed.headers["Authorization"] == v.SIG_RAW
    with pytest.raises(UsageError):
        SignatureAuth(key, v.TRANSFER_ADDRESS, scheme="sha3")


# --- clients nobody here wrote, against the dev node -------------------------------------------


def test_requests_with_signed_headers(gonka_node_factory: GonkaNodeFactory) -> None:
    """requests sends the signed bytes; the same headers sent twice are refused as a replay."""
    node = gonka_node_factory()
    url = f"{node.base_url}/chat/completions"
    headers = signed_headers(node.key, CHAT, node.addresses[0])
    with requests.Session() as session:
        answered = session.post(url, data=CHAT, headers=headers, timeout=30)
        replayed = session.post(url, data=CHAT, headers=headers, timeout=30)
    assert answered.status_code == 200, answered.text
    assert answered.json()["choices"][0]["message"]["content"] == "Echo: Hi"
    assert answered.json()["id"] == headers["Authorization"]
    assert replayed.status_code == 400
    assert "already been used" in replayed.json()["error"]
    assert node.stats.replays_refused == 1


def _seed_failing_first(kind: str) -> int:
    """A node seed whose only participant answers `kind` first, then serves."""
    return next(s for s in range(1000) if fault_sequence(s, 0, 0.5, (kind,), 2) == [kind, None])


def test_httpx2_signature_auth_re_signs_a_retry(gonka_node_factory: GonkaNodeFactory) -> None:
    """A caller's retry after 503 through SignatureAuth is signed afresh and accepted."""
    node = gonka_node_factory(fault_rate=0.5, faults=("503",), seed=_seed_failing_first("503"))
    auth = SignatureAuth(node.key, node.addresses[0])
    signatures = []
    with httpx2.Client(base_url=node.base_url, auth=auth, timeout=30) as http:
        for _ in range(3):
            response = http.post("/chat/completions", content=CHAT)
            signatures.append(response.request.headers["Authorization"])
            if response.status_code != 503:
                break
    assert response.status_code == 200, response.text
    assert len(signatures) == 2
    assert signatures[0] != signatures[1]
    verify(CHAT, signatures[1], address=node.key.address,
           timestamp_ns=auth.timestamp_ns, transfer_address=node.addresses[0])  # fmt: skip
    assert node.stats.by_status == {503: 1, 200: 1}
    assert node.stats.replays_refused == 0


def test_httpx2_signature_auth_async(gonka_node_factory: GonkaNodeFactory) -> None:
    """An AsyncClient with SignatureAuth: concurrent sends, each signed for itself, all served."""
    node = gonka_node_factory()

    async def main() -> list[httpx2.Response]:
        auth = SignatureAuth(node.key, node.addresses[0])
        async with httpx2.AsyncClient(base_url=node.base_url, auth=auth, timeout=30) as http:
            return await asyncio.gather(
                *(http.post("/chat/completions", content=CHAT) for _ in range(5))
            )

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.json()["id"] for a in answers}) == 5
    assert node.stats.accepted == 5
    assert node.stats.replays_refused == 0
