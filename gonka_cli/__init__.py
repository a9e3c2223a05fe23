"""gonka-cli: sign and send inference requests to the Gonka network."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata, and only when asked for,
    # so that importing the package stays cheap.
    if name == "__version__":
        from importlib.metadata import version

        return version("gonka-cli")
    raise AttributeError(name)
