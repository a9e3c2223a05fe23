"""Start-up: whole-process wall time of `gonka sign` and `gonka --help` against their floor.

    python -m benchmarks.bench_startup

The floor is `python -c "import typer, coincurve"`, what the chosen stack cannot avoid;
`python -c "import gonka_openai"` is the SDK developers use today. Every command runs
interleaved with the others, many times, and the table shows medians and ratios to the
floor. Targets: `gonka sign` within 1.3x of the floor, `gonka --help` within 2x, and
the library (`import gonka_cli; gonka_cli.GonkaTransport`) at most 0.25x the SDK's import.
The CPU time (user + system) of each process is shown too: on a busy machine it moves
less than the wall time.
Help is plain when piped and drawn with rich on a terminal (a pseudo-terminal here),
which costs more: both are shown, and the target is checked on the plain one.

Each row shows the median and the spread (fastest and slowest run), so that one lucky
or unlucky machine state cannot hide a regression. Bytecode: an installed wheel ships
compiled modules, so every command runs with a bytecode cache of its own (a temporary
``PYTHONPYCACHEPREFIX``, filled by the warm-up run), even where the environment sets
``PYTHONDONTWRITEBYTECODE``; one extra row shows `gonka sign` compiling gonka-cli's
modules from source on every run, as an editable install does without a cache.
"""

from __future__ import annotations

import contextlib
import os
import pty
import resource
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
NO_CACHE = "gonka sign --file F, gonka-cli compiled from source each run"
# Runs `python -m gonka_cli ARGS` importing gonka-cli without its bytecode cache (the
# libraries keep theirs), as an editable install under PYTHONDONTWRITEBYTECODE does.
_UNCACHED = """
import sys
from importlib.machinery import SourceFileLoader
from importlib.abc import MetaPathFinder
from importlib.util import spec_from_file_location
import importlib.machinery as m
class _Source(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "gonka_cli" and not name.startswith("gonka_cli."):
            return None
        spec = m.PathFinder.find_spec(name, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return spec
        loader = SourceFileLoader(name, spec.origin)
        loader.get_code = lambda fullname, _l=loader: compile(
            _l.get_data(_l.path), _l.path, "exec", dont_inherit=True)
        return spec_from_file_location(name, spec.origin, loader=loader,
            submodule_search_locations=spec.submodule_search_locations)
sys.meta_path.insert(0, _Source())
import runpy
sys.argv = ["gonka", *sys.argv[1:]]
runpy.run_module("gonka_cli", run_name="__main__", alter_sys=True)
"""
KEY = "480293bb12c956967e64c039801ed48ead6b56d34bd5f985ed53f70755d5a3ad"
# What a Python user pays to get the transport the OpenAI SDK needs (target: at most a
# quarter of `import gonka_openai`).
LIBRARY = "import gonka_cli; gonka_cli.GonkaTransport"
# A keyring-test folder written by a Cosmos SDK binary (see tests/fixtures/keyring/README.md).
KEYRING = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keyring" / "perpilize"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one whole process."""
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start, _children_cpu() - cpu


def _time_tty(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The same, with stdout on a pseudo-terminal (where help is drawn with rich)."""
    main, sub = pty.openpty()
    drained = threading.Thread(target=_drain, args=(main,), daemon=True)
    drained.start()
    try:
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(argv, env=env, stdout=sub, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start, _children_cpu() - cpu
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
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {**base, "GONKA_PRIVATE_KEY": KEY, "GONKA_HOME": home,
               "PYTHONPYCACHEPREFIX": str(Path(home) / "bytecode")}  # fmt: skip
        sign = [py, "-m", "gonka_cli", "sign", "--file", str(body)]
        commands = {
            "floor: import typer, coincurve": [py, "-c", "import typer, coincurve"],
            "gonka sign --file F": sign,
            "gonka sign, key in a test keyring": [
                *sign,
                *("--key", "validator", "--keyring-backend", "test", "--keyring-dir", str(KEYRING)),
            ],
            "gonka --help": [py, "-m", "gonka_cli", "--help"],
            "gonka --help, on a terminal": [py, "-m", "gonka_cli", "--help"],
            "SDK: import gonka_openai": [py, "-c", "import gonka_openai"],
            "library: gonka_cli.GonkaTransport": [py, "-c", LIBRARY],
            NO_CACHE: [py, "-c", _UNCACHED, *sign[3:]],
        }

        def timer(name: str) -> Callable[[list[str], dict[str, str]], tuple[float, float]]:
            return _time_tty if "terminal" in name else _time

        for name, argv in commands.items():  # warm the file cache and the bytecode
            timer(name)(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(ROUNDS):
            for name, argv in commands.items():
                wall, cpu = timer(name)(argv, env)
                times[name].append(wall)
                cpus[name].append(cpu)
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["floor: import typer, coincurve"]
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    cpu_floor = cpu["floor: import typer, coincurve"]
    rows = [
        [
            name,
            f"{m * 1000:.0f} ms",
            f"{min(times[name]) * 1000:.0f}-{max(times[name]) * 1000:.0f} ms",
            f"{m / floor:.2f}x",
            f"{min(times[name]) / min(times['floor: import typer, coincurve']):.2f}x",
            f"{cpu[name] * 1000:.0f} ms",
            f"{cpu[name] / cpu_floor:.2f}x",
        ]
        for name, m in medians.items()
    ]
    print(f"Start-up, {ROUNDS} interleaved runs each, {machine()}")
    headers = ["command", "median", "fastest-slowest", "median vs floor", "fastest vs floor",
               "median CPU", "CPU vs floor"]  # fmt: skip
    print(table(headers, rows))
    sign_ok = medians["gonka sign --file F"] <= 1.3 * floor
    help_ok = medians["gonka --help"] <= 2.0 * floor
    print(f"target gonka sign <= 1.3x floor: {'met' if sign_ok else 'MISSED'}")
    cpu_ok = cpu["gonka sign --file F"] <= 1.3 * cpu_floor
    print(f"same, on the CPU time (steadier on a busy machine): {'met' if cpu_ok else 'MISSED'}")
    print(f"target gonka --help <= 2x floor: {'met' if help_ok else 'MISSED'}")
    library = medians["library: gonka_cli.GonkaTransport"] / medians["SDK: import gonka_openai"]
    print(
        f"target library <= 0.25x import gonka_openai: {library:.2f}x, "
        f"{'met' if library <= 0.25 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
