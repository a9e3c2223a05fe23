"""What a results line or a body file may hold: `gonka_cli.redact` applied to a `Result`.

The error message, the endpoint and a failed answer's body (server text) get the full
redaction; a successful answer keeps its text, less the secrets in use.
"""

from __future__ import annotations

from dataclasses import replace

from gonka_cli.batch.results import Result
from gonka_cli.redact import redact, redact_data, scrub_data


def scrubbed(result: Result) -> Result:
    """`result` ready to be written: see the module docstring."""
    return replace(
        result,
        error_message=None if result.error_message is None else redact(result.error_message),
        endpoint=None if result.endpoint is None else redact(result.endpoint),
        body=scrub_data(result.body) if result.ok else redact_data(result.body),
    )
