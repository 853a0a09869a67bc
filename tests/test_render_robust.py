"""`archc render` never crashes either: fuzzed programs and mutants, both styles.

The fuzz tests of tests/test_fuzz.py drive `check` and `flops`; these send the programs that
compile (and the ones that do not) through the two diagram renderers as well.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_fuzz import _op_programs, mutant, problem, run_main, sources

STYLES = [["--style", "graph", "-o", "{out}.dot"], ["--style", "circuit", "-o", "{out}.svg"],
          ["--style", "graph", "--depth", "1", "--annotate", "flops", "-o", "{out}.dot"],
          ["--style", "circuit", "--symbolic", "--depth", "2", "-o", "{out}.svg"]]


def render(path: Path, style: list[str], tmp: Path) -> tuple[int, str]:
    argv = ["render", str(path)] + [a.replace("{out}", str(tmp / "diagram")) for a in style]
    return run_main(argv)


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(program=_op_programs(), style=st.sampled_from(STYLES))
def test_every_op_renders_or_gives_a_located_error(program: str, style: list[str], tmp_path: Path) -> None:
    path = tmp_path / "op.arch"
    path.write_text(program)
    status, stderr = render(path, style, tmp_path)
    assert problem(status, stderr) is None, f"{program}\n{stderr}"


def test_mutants_render_or_give_a_located_error(tmp_path: Path) -> None:
    rendered = 0
    for src in sources():
        text = src.read_text()
        for i in range(30):
            mutated, _, _ = mutant(text, 7000 + i)
            path = tmp_path / src.name
            path.write_text(mutated, encoding="utf-8", errors="surrogateescape")
            status, stderr = render(path, STYLES[i % len(STYLES)], tmp_path)
            assert problem(status, stderr) is None, f"{src.name} mutant {i}\n{stderr}"
            rendered += status == 0
    assert rendered > 0  # some mutants still compile, so the renderers really ran
