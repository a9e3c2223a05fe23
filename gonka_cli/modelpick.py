"""Which model a prompt goes to when none is named: the endpoint's first listed model.

``gonka send-request "Hello"`` needs a model; ``--model``, ``GONKA_MODEL`` and a
profile's ``model`` come first (settings), and only when none of them is set is the
endpoint asked (``GET {base}/models``: a TA's ``{"models": [...]}`` or an OpenAI-style
``{"data": [...]}`` from a broker or gateway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gonka_cli.errors import ConfigError, HTTPClientError

if TYPE_CHECKING:
    from gonka_cli.settings import Timeouts


def first_model(document: Any) -> str | None:
    """The first model id of a ``/models`` answer, in either shape (pure)."""
    if isinstance(document, dict):
        document = document.get("data", document.get("models"))
    for entry in document if isinstance(document, list) else ():
        name = entry.get("id") if isinstance(entry, dict) else entry
        if isinstance(name, str) and name.strip():
            return name
    return None


async def first_model_at(
    base_url: str,
    timeouts: Timeouts,
    headers: Mapping[str, str] | None = None,
    *,
    follow_moved: bool = False,
    trusted_origins: frozenset[str] = frozenset(),
) -> str:
    """The first model ``{base_url}/models`` lists, or a ConfigError saying how to name one.

    A gateway that moved (308 with ``new_url``) is followed as the request itself would
    be: only with `follow_moved`, and to another origin only when it is trusted."""
    from gonka_cli.transport import async_client, get_json

    url = base_url.rstrip("/") + "/models"
    async with async_client(timeouts) as client:
        for _ in range(3):
            try:
                document = await get_json(client, url, timeouts, headers=headers)
                break
            except HTTPClientError as exc:
                url = _moved_models_url(exc, url, follow_moved, trusted_origins)
        else:
            raise ConfigError(f"{base_url} moved more than twice", hint=_NAME_IT)
    model = first_model(document)
    if model is None:
        raise ConfigError(
            f"{url} lists no model to send the prompt to",
            hint="name one with --model NAME (or set GONKA_MODEL)",
        )
    return model


_NAME_IT = "or name the model with --model NAME, which needs no lookup"


def _moved_models_url(
    error: HTTPClientError, url: str, follow_moved: bool, trusted_origins: frozenset[str]
) -> str:
    """Where a moved ``/models`` now is, or `error` (with what to do) when not to follow."""
    from urllib.parse import urljoin

    from gonka_cli.endpoints import normalize_base_url, origin
    from gonka_cli.transport import json_body

    new_url = json_body(error.body.encode()).get("new_url")
    if not 300 <= error.status_code < 400 or not isinstance(new_url, str) or not new_url:
        raise error
    new_base = normalize_base_url(urljoin(url, new_url))
    if not follow_moved:
        error.hint = f"send to the new URL (--base-url {new_base}), pass --follow-moved, {_NAME_IT}"
        raise error
    new_origin = origin(new_base)
    if new_origin != origin(url) and new_origin not in trusted_origins:
        error.hint = (
            f"to follow it with your credentials, add --trust-origin {new_origin}; {_NAME_IT}"
        )
        raise error
    return new_base + "/models"
