"""README.md's zoo table states, in its last column, the lines of each examples/zoo/*.arch over the
lines of its PyTorch reference; tools/line_ratio.py measures them. The two must agree, so the table
stays true when an example or a reference changes (rerun the tool and copy its figures)."""

from __future__ import annotations

import importlib.util
import re
import sys

from conftest import ROOT

ROW = re.compile(r"^\| `examples/zoo/(?P<file>[\w.]+\.arch)` \|.*\| (?P<arch>\d+) / (?P<ref>\d+)[^|]*\|$")


def load_tool():
    spec = importlib.util.spec_from_file_location("line_ratio", ROOT / "tools" / "line_ratio.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["line_ratio"] = module   # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def readme_rows() -> dict[str, tuple[int, int]]:
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            assert m["file"] not in rows, f"{m['file']} has two rows"
            rows[m["file"]] = (int(m["arch"]), int(m["ref"]))
    return rows


def test_every_zoo_example_has_a_reference_and_a_row() -> None:
    tool = load_tool()
    examples = {p.name for p in (ROOT / "examples" / "zoo").glob("*.arch")}
    assert set(tool.REFERENCES) == examples
    assert set(readme_rows()) == examples


def test_the_readme_states_the_measured_lines() -> None:
    measured = {r.file: (r.arch, r.reference) for r in load_tool().measure()}
    assert readme_rows() == measured


def test_the_counting_rule() -> None:
    tool = load_tool()
    assert tool.arch_lines("# c\n\nblock B() {\n  # c\n  out x   # c\n}\n") == 3
    src = ('def f(x):\n    """Doc,\n    two lines."""\n    # c\n\n    y = (x +\n         1)  # c\n'
           '    return y\n\n\ndef g():\n    pass\n')
    assert tool.python_lines(src, ("f",)) == 4
    assert tool.python_lines(src, ("f", "g")) == 6
