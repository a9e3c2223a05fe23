"""Which model a prompt goes to when none is named: the endpoint's first listed model.

``gonka send-request "Hello"`` needs a model; ``--model``, ``GONKA_MODEL`` and a
profile's ``model`` come first (settings), and only when none of them is set is the
endpoint asked (``GET {base}/models``: a TA's ``{"models": [...]}`` or an OpenAI-style
``{"data": [...]}`` from a broker or gateway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gonka_cli.errors import ConfigError

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
    base_url: str, timeouts: Timeouts, headers: Mapping[str, str] | None = None
) -> str:
    """The first model ``{base_url}/models`` lists, or a ConfigError saying how to name one."""
    from gonka_cli.transport import async_client, get_json

    url = base_url.rstrip("/") + "/models"
    async with async_client(timeouts) as client:
        document = await get_json(client, url, timeouts, headers=headers)
    model = first_model(document)
    if model is None:
        raise ConfigError(
            f"{url} lists no model to send the prompt to",
            hint="name one with --model NAME (or set GONKA_MODEL)",
        )
    return model
