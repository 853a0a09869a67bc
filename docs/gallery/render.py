"""Render the gallery again: every `archc render ... -o docs/gallery/NAME.svg ...` command written in
docs/gallery.md, as SVG and as PNG (the same command with `-o docs/gallery/NAME.png`).

    python docs/gallery/render.py          # from the repository root; needs Graphviz `dot` and cairosvg

`commands()` is also what the test suite uses to check that the committed circuit-style SVGs are what
these commands write today.
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "gallery.md"


def commands(page: pathlib.Path = PAGE) -> list[list[str]]:
    """The argument lists (after `archc`) of every render command on the page, in order."""
    found = re.findall(r"^`archc (render [^`]+)`$", page.read_text(encoding="utf-8"), flags=re.M)
    return [shlex.split(c) for c in found]


def output(args: list[str]) -> str:
    return args[args.index("-o") + 1]


def with_output(args: list[str], out: str) -> list[str]:
    i = args.index("-o")
    return [*args[:i + 1], out, *args[i + 2:]]


FORCE = "--force" in sys.argv  # replace gallery files that predate archc's mark (codegen/output.py)


def main() -> int:
    from archc.cli import main as archc

    os.chdir(ROOT)  # the commands name files relative to the repository root
    for args in commands():
        svg = output(args)
        for out in (svg, svg.removesuffix(".svg") + ".png"):
            code = archc([*with_output(args, out), "--force"] if FORCE else with_output(args, out))
            if code != 0:
                print(f"failed: archc {shlex.join(with_output(args, out))}", file=sys.stderr)
                return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
