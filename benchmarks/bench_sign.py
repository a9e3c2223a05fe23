"""Signatures per second: our signing path against python-ecdsa and a bare coincurve call.

    python -m benchmarks.bench_sign

Each figure is the median of several runs made in this same process, so the ratios
hold on a noisy machine. Targets: at least 0.8x bare coincurve, at least 10x python-ecdsa,
for `sign()` and for `SignatureAuth` (signing plus setting the headers of an httpx2 request).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import coincurve
import httpx2
from ecdsa import SECP256k1
from ecdsa import SigningKey as EcdsaKey
from ecdsa.util import sigencode_string_canonize

from benchmarks._util import machine, median_rate, table
from gonka_cli.client import SignatureAuth
from gonka_cli.keys import SigningKey
from gonka_cli.signing import CLOCK, sign

SECRET = bytes.fromhex("480293bb12c956967e64c039801ed48ead6b56d34bd5f985ed53f70755d5a3ad")
TRANSFER = "gonka1jwrv4q8hpxc354pr87pt0pkulaep67e9s4z0ym"
BODY = (
    Path(__file__)
    .resolve()
    .parent.parent.joinpath("inference-requests", "request_payload.json")
    .read_bytes()
)


def main() -> None:
    """Measure the three, print the table with ratios."""
    ours = SigningKey.from_secret(SECRET)
    bare = coincurve.PrivateKey(SECRET)
    reference = EcdsaKey.from_string(SECRET, curve=SECP256k1, hashfunc=hashlib.sha256)

    def message() -> bytes:
        # What every signer must build: hex(sha256(body)) + timestamp + address.
        return (hashlib.sha256(BODY).hexdigest() + str(CLOCK.now_ns()) + TRANSFER).encode()

    auth = SignatureAuth(ours, TRANSFER)
    request = httpx2.Request("POST", "http://ta.invalid/v1/chat/completions", content=BODY)

    def through_auth() -> None:
        # What each send through an httpx2 client costs: sign, then set the headers.
        next(auth.sync_auth_flow(request))

    rates = {
        "gonka-cli sign()": median_rate(lambda: sign(ours, BODY, CLOCK.now_ns(), TRANSFER)),
        "gonka_cli.SignatureAuth (httpx2)": median_rate(through_auth),
        "bare coincurve sign_recoverable": median_rate(lambda: bare.sign_recoverable(message())),
        "python-ecdsa (docs / SDK)": median_rate(
            lambda: reference.sign_deterministic(message(), sigencode=sigencode_string_canonize)
        ),
    }
    base = rates["bare coincurve sign_recoverable"]
    ecdsa_rate = rates["python-ecdsa (docs / SDK)"]
    rows = [
        [name, f"{rate:,.0f}", f"{rate / base:.2f}x", f"{rate / ecdsa_rate:.1f}x"]
        for name, rate in rates.items()
    ]
    print(f"Signing, {machine()}")
    print(table(["signer", "signatures/s", "vs bare coincurve", "vs python-ecdsa"], rows))
    ok = rates["gonka-cli sign()"] >= 0.8 * base and rates["gonka-cli sign()"] >= 10 * ecdsa_rate
    print(f"target (>= 0.8x coincurve, >= 10x python-ecdsa): {'met' if ok else 'MISSED'}")
    auth_ok = rates["gonka_cli.SignatureAuth (httpx2)"] >= 0.8 * base
    print(f"target SignatureAuth >= 0.8x coincurve: {'met' if auth_ok else 'MISSED'}")


if __name__ == "__main__":
    main()
