"""Entry point of ``zot-artifacts``. This foundation only answers ``--version``."""

from __future__ import annotations

import argparse
import sys

import zot_artifacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zot-artifacts", description="Client CLI for Zot Artifact Store."
    )
    parser.add_argument(
        "--version", action="version", version=f"zot-artifacts {zot_artifacts.__version__}"
    )
    parser.parse_args(argv)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
