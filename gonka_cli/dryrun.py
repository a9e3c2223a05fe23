"""``--dry-run``: a signed request shown as HTTP, as a curl command, or as JSON (pure).

Nothing here sends anything. A broker API key is never printed: the HTTP and JSON
forms mask it, and the curl form refers to where the key comes from
(``$GONKA_BROKER_API_KEY``, ``$(cat FILE)``, ``$(COMMAND)``) so the shell fills it in.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from gonka_cli.settings import mask

# Headers curl writes by itself; the command leaves them to it.
CURL_OWN_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length"}
)


def _masked(name: str, value: str) -> str:
    if name.lower() == "authorization" and value.startswith("Bearer "):
        return "Bearer " + mask(value[len("Bearer ") :])
    return value


def as_http(method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes) -> str:
    """The request line, the headers and the body, as they go on the wire."""
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'} HTTP/1.1"]
    lines += [f"{name}: {_masked(name, value)}" for name, value in headers]
    return "\n".join(lines) + "\n\n" + body.decode("utf-8", "replace")


def as_curl(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    body_file: str | None = None,
    key_ref: str | None = None,
) -> str:
    """A shell command that sends exactly these bytes and headers.

    `body_file` (a file holding exactly `body`) is sent with ``--data-binary @FILE``;
    otherwise the bytes are piped in with ``printf '%s'``. `key_ref` is the shell text
    that yields the API key, for bearer requests.
    """
    args = [f"curl -sS -X {method} {shlex.quote(url)}"]
    for name, value in headers:
        if name.lower() in CURL_OWN_HEADERS:
            continue
        if name.lower() == "authorization" and value.startswith("Bearer "):
            args.append(f'-H "Authorization: Bearer {key_ref or "$GONKA_BROKER_API_KEY"}"')
        else:
            args.append(f"-H {shlex.quote(f'{name}: {value}')}")
    if body_file is not None:
        args.append(f"--data-binary @{shlex.quote(body_file)}")
        return " \\\n  ".join(args)
    args.append("--data-binary @-")
    feed = f"printf '%s' {shlex.quote(body.decode('utf-8'))} | "
    return feed + " \\\n  ".join(args)


def as_json(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The request as one JSON object (the body as text), secrets masked."""
    return {
        "method": method,
        "url": url,
        "headers": {name: _masked(name, value) for name, value in headers},
        "body": body.decode("utf-8", "replace"),
        **extra,
    }


def key_reference(origin: str | None, value: str | None) -> str | None:
    """Shell text that yields the API key, from the setting that supplies it."""
    if origin == "api_key_file" and value:
        return f"$(cat {shlex.quote(value)})"
    if origin == "api_key_cmd" and value:
        return f"$({value})"
    return "$GONKA_BROKER_API_KEY"
