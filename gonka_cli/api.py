"""The library functions of the public API: a key, signed headers, and checking a signature.

These are what ``gonka sign`` and ``gonka verify`` do, for Python callers (``requests``,
``aiohttp`` or anything else that sends bytes). Import them from `gonka_cli` itself.
"""

from __future__ import annotations

from gonka_cli.errors import InvalidSignature
from gonka_cli.keys import SigningKey, parse_address, parse_public_key
from gonka_cli.keys.selection import KeyringChoice, resolve_signing_key
from gonka_cli.signing import (
    CLOCK,
    Scheme,
    SignatureProblem,
    parse_scheme,
    sign,
    signature_headers,
    verify_with_address,
    verify_with_public_key,
)


def load_key(
    name_or_address: str | None = None,
    *,
    private_key_file: str | None = None,
    passphrase_file: str | None = None,
    keyring_backend: str | None = None,
    keyring_dir: str | None = None,
) -> SigningKey:
    """The signing key, found in the same order and key sources as the command line's.

    A ``gonka1...`` address selects the stored key with that address (or, failing that,
    ``GONKA_PRIVATE_KEY`` must be that address's key), any other text a stored key by
    name (gonka's keystore, then `inferenced`'s ``test`` keyring); with neither,
    ``GONKA_PRIVATE_KEY``, then `private_key_file`, then the default stored key.
    `keyring_backend` (``test`` or ``file``; else ``GONKA_KEYRING_BACKEND``) and
    `keyring_dir` pick one `inferenced` keyring instead, as ``--keyring-backend`` and
    ``--keyring-dir`` do. Encrypted keys are opened with `passphrase_file`, else
    ``GONKA_KEYRING_PASSPHRASE``, else a hidden prompt. Raises `ConfigError` when no key
    is found or it cannot be opened.
    """
    text = (name_or_address or "").strip() or None
    is_address = text is not None and text.lower().startswith("gonka1")
    return resolve_signing_key(
        key=None if is_address else text,
        account_address=text if is_address else None,
        private_key_file=private_key_file,
        passphrase_file=passphrase_file,
        keyring=KeyringChoice(backend=keyring_backend, keyring_dir=keyring_dir),
    )


def signed_headers(
    key: SigningKey,
    body: bytes,
    transfer_address: str,
    *,
    timestamp_ns: int | None = None,
    scheme: Scheme | str = Scheme.HASH,
) -> dict[str, str]:
    """The headers to send with exactly these body bytes to the TA at `transfer_address`.

    ``Content-Type``, ``Authorization`` (the bare signature), ``X-Requester-Address`` and
    ``X-Timestamp``. Without `timestamp_ns` the current time is used, strictly increasing
    within the process, so every call (every retry) gets a signature of its own.
    """
    transfer = parse_address(transfer_address) if transfer_address else ""
    stamp = CLOCK.now_ns() if timestamp_ns is None else timestamp_ns
    signature = sign(key, bytes(body), stamp, transfer, parse_scheme(scheme))
    return signature_headers(signature, key.address, stamp)


def verify(
    body: bytes,
    signature: str,
    *,
    address: str | None = None,
    public_key: bytes | str | None = None,
    timestamp_ns: int = 0,
    transfer_address: str = "",
    scheme: Scheme | str = Scheme.HASH,
) -> None:
    """Check a signature as ``gonka verify`` does; raise `InvalidSignature` saying why not.

    Give the signer's `address` (its public key is recovered from the signature) or its
    `public_key` (33 compressed bytes, or base64 or hex text). Only low-S signatures of
    exactly 64 bytes are valid, as on the network.
    """
    from gonka_cli.errors import UsageError

    if (address is None) == (public_key is None):
        raise UsageError("pass exactly one of address and public_key")
    transfer = parse_address(transfer_address) if transfer_address else ""
    chosen = parse_scheme(scheme)
    try:
        if public_key is not None:
            text = public_key.hex() if isinstance(public_key, bytes) else public_key
            raw = parse_public_key(text)  # checks length, form and the curve
            verify_with_public_key(raw, signature, bytes(body), timestamp_ns, transfer, chosen)
        else:
            signer = parse_address(str(address))
            verify_with_address(signer, signature, bytes(body), timestamp_ns, transfer, chosen)
    except SignatureProblem as problem:
        raise InvalidSignature(f"invalid signature: {problem}") from None
