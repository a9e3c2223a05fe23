"""``gonka sign`` and ``gonka verify``: standalone, scriptable signing and checking."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from gonka_cli.cli._common import (
    AccountAddressOpt,
    FileOpt,
    FromOpt,
    HomeOpt,
    KeyOpt,
    KeyringBackendOpt,
    KeyringDirOpt,
    PassphraseFileOpt,
    PrivateKeyFileOpt,
    SchemeChoice,
    SchemeOpt,
    TextArg,
    TimestampOpt,
    TransferOpt,
    emit,
    emit_json,
)
from gonka_cli.errors import InvalidSignature, UsageError

# The signing modules (and coincurve under them) are imported inside the commands,
# so that `gonka --help` and the other commands do not pay for them.


class SignOutput(StrEnum):
    """What `gonka sign` prints."""

    signature = "signature"
    json = "json"
    headers = "headers"


class VerifyOutput(StrEnum):
    """What `gonka verify` prints."""

    text = "text"
    json = "json"


def sign_command(
    text: TextArg = None,
    file: FileOpt = None,
    timestamp: TimestampOpt = None,
    endpoint_account: TransferOpt = None,
    scheme: SchemeOpt = SchemeChoice.hash,
    key: KeyOpt = None,
    account_address: AccountAddressOpt = None,
    private_key_file: PrivateKeyFileOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    from_name: FromOpt = None,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    output: Annotated[
        SignOutput, typer.Option("--output", "-o", help="signature, json, or HTTP header lines.")
    ] = SignOutput.signature,
) -> None:
    """Sign a request body as a transfer agent checks it; print the base64 signature.

    The key, in this order: --key (or --from), --account-address, GONKA_PRIVATE_KEY,
    --private-key-file, the default stored key. --key, --from and --account-address look
    in gonka's keystore, then in inferenced's test keyring (~/.inference); with
    --keyring-backend test|file only in that keyring. Example:

        SIG=$(gonka sign --file body.json --endpoint-account gonka1...)
    """
    import hashlib

    from gonka_cli.keys import parse_address
    from gonka_cli.keys.selection import KeyringChoice, resolve_signing_key
    from gonka_cli.payloads import read_input
    from gonka_cli.signing import CLOCK, Scheme, sign, signature_headers

    transfer = parse_address(endpoint_account) if endpoint_account else ""
    body = read_input(text, file).data
    signer = resolve_signing_key(
        key=key,
        account_address=account_address,
        private_key_file=private_key_file,
        passphrase_file=passphrase_file,
        from_name=from_name,
        keyring=KeyringChoice(keyring_backend, keyring_dir, home),
    )
    stamp = CLOCK.now_ns() if timestamp is None else timestamp
    signature = sign(signer, body, stamp, transfer, Scheme(scheme.value))
    headers = signature_headers(signature, signer.address, stamp)
    if output is SignOutput.signature:
        emit(signature)
    elif output is SignOutput.headers:
        for name, value in headers.items():
            emit(f"{name}: {value}")
    else:
        emit_json(
            {
                "signature": signature,
                "timestamp": stamp,
                "requester_address": signer.address,
                "transfer_address": transfer,
                "scheme": scheme.value,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "headers": headers,
            }
        )


def verify_command(
    text: TextArg = None,
    file: FileOpt = None,
    signature: Annotated[
        str, typer.Option("--signature", "-s", metavar="B64", help="The base64 signature to check.")
    ] = "",
    address: Annotated[
        str | None, typer.Option("--address", metavar="ADDR", help="The signer's gonka1 address.")
    ] = None,
    pubkey: Annotated[
        str | None,
        typer.Option("--pubkey", metavar="B64|HEX", help="The signer's compressed public key."),
    ] = None,
    timestamp: TimestampOpt = 0,
    endpoint_account: TransferOpt = None,
    scheme: SchemeOpt = SchemeChoice.hash,
    output: Annotated[
        VerifyOutput, typer.Option("--output", "-o", help="text (exit code only) or json.")
    ] = VerifyOutput.text,
) -> None:
    """Check a signature against an address or a public key; exit 0 if valid, 3 if not.

    Works for any signer: with --address the public key is recovered from the signature.

        gonka verify --file body.json --signature "$SIG" --address gonka1... \\
            --timestamp 1700000000000000000 --endpoint-account gonka1...
    """
    from gonka_cli.keys import parse_address, parse_public_key
    from gonka_cli.payloads import read_input
    from gonka_cli.signing import (
        Scheme,
        SignatureProblem,
        verify_with_address,
        verify_with_public_key,
    )

    if not signature:
        raise UsageError("no signature to check: pass --signature B64")
    if (address is None) == (pubkey is None):
        raise UsageError("pass exactly one of --address and --pubkey")
    signer_address = parse_address(address) if address else None
    signer_key = parse_public_key(pubkey) if pubkey else None
    transfer = parse_address(endpoint_account) if endpoint_account else ""
    body = read_input(text, file).data
    chosen = Scheme(scheme.value)
    try:
        if signer_key is not None:
            verify_with_public_key(signer_key, signature, body, timestamp or 0, transfer, chosen)
        else:
            assert signer_address is not None
            verify_with_address(signer_address, signature, body, timestamp or 0, transfer, chosen)
    except SignatureProblem as problem:
        if output is VerifyOutput.json:
            emit_json({"valid": False, "reason": str(problem)})
        raise InvalidSignature(f"invalid signature: {problem}") from None
    if output is VerifyOutput.json:
        emit_json({"valid": True, "reason": None})
