"""``python -m gonka_cli``."""

from gonka_cli.cli import main

main()
