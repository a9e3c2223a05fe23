"""Start-up: whole-process wall time of `gonka sign` and `gonka --help` against their floor.

    python -m benchmarks.bench_startup

The floor is `python -c "import typer, coincurve"`, what the chosen stack cannot avoid;
`python -c "import gonka_openai"` is the SDK developers use today. Every command runs
interleaved with the others, many times, and the table shows medians and ratios to the
floor. Targets: `gonka sign` within 1.3x of the floor, `gonka --help` within 2x, and
the library (`import gonka_cli; gonka_cli.GonkaTransport`) at most 0.25x the SDK's import.
Help is plain when piped and drawn with rich on a terminal (a pseudo-terminal here),
which costs more: both are shown, and the target is checked on the plain one.
"""

from __future__ import annotations

import contextlib
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._util import machine, table

ROUNDS = 25
KEY = "480293bb12c956967e64c039801ed48ead6b56d34bd5f985ed53f70755d5a3ad"
# What a Python user pays to get the transport the OpenAI SDK needs (target: at most a
# quarter of `import gonka_openai`).
LIBRARY = "import gonka_cli; gonka_cli.GonkaTransport"
# A keyring-test folder written by a Cosmos SDK binary (see tests/fixtures/keyring/README.md).
KEYRING = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keyring" / "perpilize"


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _time_tty(argv: list[str], env: dict[str, str]) -> float:
    """The same, with stdout on a pseudo-terminal (where help is drawn with rich)."""
    main, sub = pty.openpty()
    drained = threading.Thread(target=_drain, args=(main,), daemon=True)
    drained.start()
    try:
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=sub, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start
    finally:
        os.close(sub)
        drained.join(timeout=5)
        os.close(main)


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


def main() -> None:
    """Run each command ROUNDS times, interleaved, and print medians and ratios."""
    py = sys.executable
    body = Path(__file__).resolve().parent.parent / "inference-requests" / "request_payload.json"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "GONKA_PRIVATE_KEY": KEY, "GONKA_HOME": home}
        commands = {
            "floor: import typer, coincurve": [py, "-c", "import typer, coincurve"],
            "gonka sign --file F": [py, "-m", "gonka_cli", "sign", "--file", str(body)],
            "gonka sign, key in a test keyring": [
                *(py, "-m", "gonka_cli", "sign", "--file", str(body), "--key", "validator"),
                *("--keyring-backend", "test", "--keyring-dir", str(KEYRING)),
            ],
            "gonka --help": [py, "-m", "gonka_cli", "--help"],
            "gonka --help, on a terminal": [py, "-m", "gonka_cli", "--help"],
            "SDK: import gonka_openai": [py, "-c", "import gonka_openai"],
            "library: gonka_cli.GonkaTransport": [py, "-c", LIBRARY],
        }

        def timer(name: str) -> Callable[[list[str], dict[str, str]], float]:
            return _time_tty if "terminal" in name else _time

        for name, argv in commands.items():  # warm the file cache and the bytecode
            timer(name)(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(ROUNDS):
            for name, argv in commands.items():
                times[name].append(timer(name)(argv, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["floor: import typer, coincurve"]
    lows = {name: min(values) for name, values in times.items()}
    rows = [
        [name, f"{m * 1000:.0f} ms", f"{lows[name] * 1000:.0f} ms", f"{m / floor:.2f}x"]
        for name, m in medians.items()
    ]
    print(f"Start-up, median of {ROUNDS} interleaved runs, {machine()}")
    print(table(["command", "median", "fastest", "median vs floor"], rows))
    sign_ok = medians["gonka sign --file F"] <= 1.3 * floor
    help_ok = medians["gonka --help"] <= 2.0 * floor
    print(f"target gonka sign <= 1.3x floor: {'met' if sign_ok else 'MISSED'}")
    print(f"target gonka --help <= 2x floor: {'met' if help_ok else 'MISSED'}")
    library = medians["library: gonka_cli.GonkaTransport"] / medians["SDK: import gonka_openai"]
    print(
        f"target library <= 0.25x import gonka_openai: {library:.2f}x, "
        f"{'met' if library <= 0.25 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
