"""Every error this tool raises on purpose, and the exit code each one ends in.

The tree::

    GonkaError                      exit 1   anything we did not foresee
    ├── UsageError                  exit 2   bad input: files, JSON, flags, values
    │   └── PayloadError            exit 2   a request body that may not be sent
    ├── InvalidSignature            exit 3   `gonka verify` said no
    ├── HTTPClientError             exit 4   a final HTTP 4xx from a node or gateway
    ├── HTTPServerError             exit 5   5xx, or 429 after every retry and endpoint
    ├── NetworkError                exit 6   connection failures and time-outs
    │   └── Unreachable             exit 6   nothing answers at that address at all
    ├── ConfigError                 exit 7   keys, passphrases, settings, config files
    ├── PartialFailure              exit 8   a batch in which some requests failed
    ├── OutputError                 exit 74  results could not be written (disk full, EPIPE)
    ├── ResultsBusy                 exit 75  another run is writing the same results file
    └── Interrupted                 exit 130 Ctrl-C
        ├── HungUp                  exit 129 SIGHUP (the terminal went away)
        └── Terminated              exit 143 SIGTERM (systemd, Docker, Kubernetes, timeout)

Foreign exceptions are translated into these at one boundary each (``raise ... from``),
and the command line prints ``error: <message>`` (and ``hint: <hint>``) on stderr. No
message ever contains a private key: the code that parses keys says what is wrong
with one, never what it was.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes, documented in the README."""

    OK = 0
    ERROR = 1
    USAGE = 2
    INVALID_SIGNATURE = 3
    HTTP_4XX = 4
    HTTP_5XX = 5
    NETWORK = 6
    CONFIG = 7
    PARTIAL = 8
    OUTPUT = 74  # sysexits.h EX_IOERR
    BUSY = 75  # sysexits.h EX_TEMPFAIL: try again once the other run is over
    HANGUP = 129  # 128 + SIGHUP, as a shell reports a process the signal killed
    INTERRUPTED = 130
    TERMINATED = 143  # 128 + SIGTERM


class GonkaError(Exception):
    """Base of every expected error; carries its exit code and an optional hint."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(GonkaError):
    """Bad input: a missing file, a malformed value, flags that do not go together."""

    exit_code = ExitCode.USAGE


class PayloadError(UsageError):
    """A request body that must not be sent (not JSON, no model, no messages...)."""


class InvalidSignature(GonkaError):
    """A signature that does not verify."""

    exit_code = ExitCode.INVALID_SIGNATURE


class HTTPError(GonkaError):
    """A final HTTP error answer; carries the status code and the server's message."""

    def __init__(
        self, message: str, *, status_code: int, hint: str | None = None, body: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.body = body


class HTTPClientError(HTTPError):
    """A final HTTP 4xx."""

    exit_code = ExitCode.HTTP_4XX


class HTTPServerError(HTTPError):
    """A final HTTP 5xx, or 429 after all retries and endpoints."""

    exit_code = ExitCode.HTTP_5XX


class NetworkError(GonkaError):
    """Could not connect, the connection dropped, or a time-out was hit."""

    exit_code = ExitCode.NETWORK


class Unreachable(NetworkError):
    """No connection could be made at all (refused, or the host does not resolve)."""


class ConfigError(GonkaError):
    """Keys, passphrases, key files, settings: something to fix in the set-up."""

    exit_code = ExitCode.CONFIG


class PartialFailure(GonkaError):
    """A batch finished, but some of its requests failed."""

    exit_code = ExitCode.PARTIAL


class OutputError(GonkaError):
    """Results could not be written: no space, an I/O error, a closed pipe or stdout."""

    exit_code = ExitCode.OUTPUT


class ResultsBusy(GonkaError):
    """Another process holds the lock of the results file this run would write."""

    exit_code = ExitCode.BUSY


class Interrupted(GonkaError):
    """The user pressed Ctrl-C."""

    exit_code = ExitCode.INTERRUPTED


class HungUp(Interrupted):
    """SIGHUP stopped a batch (its terminal or session went away)."""

    exit_code = ExitCode.HANGUP


class Terminated(Interrupted):
    """SIGTERM stopped a batch (a service manager, a container runtime, `timeout`)."""

    exit_code = ExitCode.TERMINATED
