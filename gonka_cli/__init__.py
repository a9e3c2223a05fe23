"""gonka-cli: sign and send inference requests to the Gonka network, from the shell or Python.

    import httpx2
    from openai import OpenAI
    from gonka_cli import GonkaTransport, load_key

    transport = GonkaTransport(load_key(), source_url="http://node:8000")
    client = OpenAI(base_url="http://gonka/v1", api_key="unused",
                    http_client=httpx2.Client(transport=transport))

The names in `__all__` are the public, typed API; everything else in the package is
private. Importing `gonka_cli` is cheap: each name loads its module on first use (PEP 562).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not `from typing import ...`: typing costs 10 ms, and this is free
if TYPE_CHECKING:
    from gonka_cli.api import load_key, signed_headers, verify
    from gonka_cli.client import SignatureAuth
    from gonka_cli.errors import (
        ConfigError,
        GonkaError,
        HTTPClientError,
        HTTPError,
        HTTPServerError,
        InvalidSignature,
        NetworkError,
        UsageError,
    )
    from gonka_cli.keys import SigningKey
    from gonka_cli.signing import Scheme
    from gonka_cli.transports import AsyncGonkaTransport, GonkaTransport

# Where each public name lives; loaded on first use, so that `gonka sign` (which imports
# this package too) pays for none of it.
_HOMES = {
    "AsyncGonkaTransport": "transports",
    "ConfigError": "errors",
    "GonkaError": "errors",
    "GonkaTransport": "transports",
    "HTTPClientError": "errors",
    "HTTPError": "errors",
    "HTTPServerError": "errors",
    "InvalidSignature": "errors",
    "NetworkError": "errors",
    "Scheme": "signing",
    "SignatureAuth": "client",
    "SigningKey": "keys",
    "UsageError": "errors",
    "load_key": "api",
    "signed_headers": "api",
    "verify": "api",
}

__all__ = [
    "AsyncGonkaTransport",
    "ConfigError",
    "GonkaError",
    "GonkaTransport",
    "HTTPClientError",
    "HTTPError",
    "HTTPServerError",
    "InvalidSignature",
    "NetworkError",
    "Scheme",
    "SignatureAuth",
    "SigningKey",
    "UsageError",
    "load_key",
    "signed_headers",
    "verify",
]


def __getattr__(name: str) -> object:
    # The version is read from the installed metadata, and only when asked for.
    if name == "__version__":
        from importlib.metadata import version

        return version("gonka-cli")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gonka_cli' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gonka_cli.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
