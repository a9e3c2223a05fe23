"""Every read from a server is bounded: a hostile or broken one may send without end.

The limits, in one place (the README's "Limits" section lists them). Only the first is
a setting (``--max-response-bytes`` / ``GONKA_MAX_RESPONSE_BYTES``); the others are fixed.
"""

from __future__ import annotations

MiB = 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 64 * MiB  # a non-streamed answer, or a stream's text in all
MAX_ERROR_BODY_BYTES = 64 * 1024  # an error answer's body: kept up to here, the rest unread
MAX_DOCUMENT_BYTES = 4 * MiB  # /v1/identity, discovery and the other JSON documents we GET
MAX_EVENT_BYTES = 1 * MiB  # one server-sent event (httpx2's own default)
DOCUMENT_DEADLINE_S = 60.0  # a whole document GET, unless --timeout says otherwise
DEFAULT_DEADLINE_S = 600.0  # a non-streamed request as a whole, unless --timeout says otherwise
