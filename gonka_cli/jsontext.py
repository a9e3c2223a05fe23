"""``json.loads`` with one way to fail: every malformed document raises `JSONDecodeError`.

The standard parser has two more: `RecursionError` for nesting deeper than the
interpreter's stack (``[[[[...`` a hundred thousand times) and a plain `ValueError` for
an integer longer than 4300 digits. Input files and server answers can hold either, so
every parse of outside JSON goes through `loads`, and the callers' existing
``except json.JSONDecodeError`` covers them. `UnicodeDecodeError` (bytes that are not
UTF-8) passes through unchanged, as from `json.loads`.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes | bytearray) -> Any:
    """Parse JSON text; raise `json.JSONDecodeError` for anything that is not a document."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", _text(data), 0) from None
    except ValueError:  # the int-max-str-digits guard of CPython 3.11+
        raise json.JSONDecodeError("a number has too many digits", _text(data), 0) from None


def _text(data: str | bytes | bytearray) -> str:
    return data if isinstance(data, str) else bytes(data[:200]).decode("utf-8", "replace")
