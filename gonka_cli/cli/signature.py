"""``gonka sign`` and ``gonka verify``: standalone, scriptable signing and checking."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

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
    info,
    warn,
)
from gonka_cli.errors import InvalidSignature, UsageError

if TYPE_CHECKING:
    from gonka_cli.signing import Scheme

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

    The timestamp is part of what is signed: the one chosen is said on stderr (and is
    in -o json and -o headers). Without --endpoint-account the signature is for an empty
    transfer address, which transfer agents refuse (a warning says so).

    The key, in this order: --key (or --from), --account-address, GONKA_PRIVATE_KEY,
    --private-key-file, the default stored key. --key, --from and --account-address look
    in gonka's keystore, then in inferenced's test keyring (~/.inference); with
    --keyring-backend test|file only in that keyring. Example:

        SIG=$(gonka sign --file body.json --endpoint-account gonka1...)

    \b
        gonka sign -f F --endpoint-account T -o json |
            gonka verify --from-json - -f F --address A
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
    if not transfer:
        warn(
            "no --endpoint-account: signed for an empty transfer address, which transfer "
            "agents refuse; pass the TA's address (gonka endpoints lists them)"
        )
    stamp = CLOCK.now_ns() if timestamp is None else timestamp
    signature = sign(signer, body, stamp, transfer, Scheme(scheme.value))
    headers = signature_headers(signature, signer.address, stamp)
    if output is SignOutput.signature:
        if timestamp is None:  # verify needs it: say which one was signed
            info(f"timestamp: {stamp} (verify with --timestamp {stamp})")
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
    timestamp: TimestampOpt = None,
    endpoint_account: TransferOpt = None,
    scheme: Annotated[
        SchemeChoice | None,
        typer.Option("--scheme", help="hash (nodes v0.2.6 and later) or raw (older nodes)."),
    ] = None,
    from_json: Annotated[
        str | None,
        typer.Option(
            "--from-json",
            metavar="PATH|-",
            help="Take signature, timestamp, transfer address and scheme from `gonka sign -o "
            "json` output (flags override).",
        ),
    ] = None,
    output: Annotated[
        VerifyOutput, typer.Option("--output", "-o", help="text (exit code only) or json.")
    ] = VerifyOutput.text,
) -> None:
    """Check a signature against an address or a public key; exit 0 if valid, 3 if not.

    Works for any signer: with --address the public key is recovered from the signature.
    The timestamp (default 0) and the transfer address are part of the signed message:
    pass the ones `gonka sign` used, or pipe its -o json output into --from-json -.

    \b
        gonka verify --file body.json --signature "$SIG" --address gonka1... \\
            --timestamp 1700000000000000000 --endpoint-account gonka1...

    \b
        gonka sign -f F --endpoint-account T -o json |
            gonka verify --from-json - -f F --address A
    """
    from gonka_cli.keys import parse_address, parse_public_key
    from gonka_cli.payloads import read_input
    from gonka_cli.signing import (
        SignatureProblem,
        verify_with_address,
        verify_with_public_key,
    )

    signed = _Signed.read(from_json, body_from_stdin=file == "-") if from_json else _Signed()
    given = _Signed(
        signature or None,
        timestamp,
        parse_address(endpoint_account) if endpoint_account else None,
        scheme.value if scheme else None,
    )
    claim = signed.overridden_by(given)
    if not claim.signature and from_json:
        raise UsageError(
            f"--from-json {from_json}: no signature in it; expected the JSON object "
            "`gonka sign -o json` prints"
        )
    if not claim.signature:
        raise UsageError("no signature to check: pass --signature B64 or --from-json PATH")
    if (address is None) == (pubkey is None):
        raise UsageError("pass exactly one of --address and --pubkey")
    signer_address = parse_address(address) if address else None
    signer_key = parse_public_key(pubkey) if pubkey else None
    body = read_input(text, file).data
    stamp, transfer, chosen = claim.timestamp or 0, claim.transfer or "", claim.scheme_()
    try:
        if signer_key is not None:
            verify_with_public_key(signer_key, claim.signature, body, stamp, transfer, chosen)
        else:
            assert signer_address is not None
            verify_with_address(signer_address, claim.signature, body, stamp, transfer, chosen)
    except SignatureProblem as problem:
        if output is VerifyOutput.json:
            emit_json({"valid": False, "reason": str(problem)})
        raise InvalidSignature(
            f"invalid signature: {problem}", hint=_verify_hint(claim, signed, body)
        ) from None
    if output is VerifyOutput.json:
        emit_json({"valid": True, "reason": None})


@dataclass(frozen=True)
class _Signed:
    """What a signature claims to cover (None: not said)."""

    signature: str | None = None
    timestamp: int | None = None
    transfer: str | None = None
    scheme: str | None = None
    body_sha256: str | None = None

    @classmethod
    def read(cls, source: str, *, body_from_stdin: bool) -> _Signed:
        """`gonka sign -o json` output from a file or standard input, checked."""
        import json

        from gonka_cli.payloads import read_input

        if source == "-" and body_from_stdin:
            raise UsageError("--from-json - and --file - cannot both read standard input")
        raw = read_input(None, source, what="signature document")
        origin = "--from-json " + raw.source
        try:
            document = json.loads(raw.data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{origin}: not JSON ({exc})") from None
        if not isinstance(document, dict):
            raise UsageError(f"{origin}: expected the JSON object `gonka sign -o json` prints")
        return cls(
            _field(document, "signature", str, origin),
            _field(document, "timestamp", int, origin),
            _transfer(_field(document, "transfer_address", str, origin), origin),
            _field(document, "scheme", str, origin),
            _field(document, "body_sha256", str, origin),
        )

    def overridden_by(self, flags: _Signed) -> _Signed:
        """These values, with every one the command line gives replacing its own."""
        return _Signed(
            flags.signature or self.signature,
            self.timestamp if flags.timestamp is None else flags.timestamp,
            self.transfer if flags.transfer is None else flags.transfer,
            flags.scheme or self.scheme,
            self.body_sha256,
        )

    def scheme_(self) -> Scheme:
        """The signed-message layout (hash unless said)."""
        from gonka_cli.signing import Scheme

        try:
            return Scheme(self.scheme or "hash")
        except ValueError:
            raise UsageError(f"scheme {self.scheme!r}: choose hash or raw") from None


def _field(document: dict[str, Any], name: str, kind: type, origin: str) -> Any:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UsageError(f"{origin}: {name} must be a {'number' if kind is int else 'string'}")
    return value


def _transfer(value: str | None, origin: str) -> str | None:
    from gonka_cli.keys import parse_address

    if not value:
        return value
    try:
        return parse_address(value)
    except UsageError as exc:
        raise UsageError(f"{origin}: transfer_address: {exc.message}") from None


def _verify_hint(claim: _Signed, signed: _Signed, body: bytes) -> str | None:
    """Why a signature may not match when the likely cause is a missing piece."""
    import hashlib

    if signed.body_sha256 and hashlib.sha256(body).hexdigest() != signed.body_sha256:
        return "the body is not the one that was signed (its SHA-256 differs)"
    if claim.timestamp is None:
        return (
            "the timestamp is part of the signed message and none was given (0 was used): "
            "pass --timestamp NS as `gonka sign` reported it, or pipe `gonka sign -o json` "
            "into `gonka verify --from-json -`"
        )
    if claim.transfer is None:
        return (
            "the transfer address is part of the signed message and none was given: "
            "pass --endpoint-account ADDR as signed"
        )
    return None
