"""What a results line or a body file may hold: `gonka_cli.redact` applied to a `Result`.

The error message, the endpoint and a failed answer's body (server text) get the full
redaction; a successful answer keeps its text, less the secrets in use.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from gonka_cli.batch.results import Result
from gonka_cli.redact import redact, redact_data, scrub_data


def scrubbed(result: Result) -> Result:
    """`result` ready to be written: see the module docstring."""
    error = None if result.error_message is None else redact(result.error_message)
    endpoint = None if result.endpoint is None else _endpoint(result.endpoint)
    body = scrub_data(result.body) if result.ok else redact_data(result.body)
    if (error, endpoint) == (result.error_message, result.endpoint) and body is result.body:
        return result  # the common case: nothing to take out
    return replace(result, error_message=error, endpoint=endpoint, body=body)


@cache
def _endpoint(url: str) -> str:
    """A run's few endpoint URLs, redacted once each (the secrets are set before sending)."""
    return redact(url)
