"""Resource limits (ir/limits.py, docs/errors.md "Limits"): each budget stops a runaway program with a
located error, quickly and in bounded memory; `--limit NAME=N` (and `archc.api.limits`) raises it; and
a long chain of ops still checks in seconds (elaboration and the cost pass stay linear)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import time

import pytest

from archc import api, cli

NESTED = """block Net() {
  in x: [b = 1, c = 4]
  for i in 0..COUNT {
    for j in 0..COUNT {
      for k in 0..COUNT {
        y = 1
      }
    }
  }
  out x
}
"""

DOUBLING = """block A(n) {
  in x: [b = 1, c = 4]
  if n == 0 {
    out relu(x)
  } else {
    p = A(x, n - 1)
    q = A(p, n - 1)
    out q
  }
}
entry block Net() {
  in x: [b = 1, c = 4]
  a = A(x, LEVELS)
  out a
}
"""

CHAIN = """block Net() {
  in x: [b = 1, c = 4]
  y = relu(x)
  for i in 0..COUNT {
    y = relu(y)
  }
  out y
}
"""


def _write(tmp_path: pathlib.Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _rss_kb(pid: int) -> int:
    """The resident memory of a running process in kB (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str, float]:
    start = time.monotonic()
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err, time.monotonic() - start


def test_nested_loops_stop_at_the_step_budget(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "nested.arch", NESTED.replace("COUNT", "1000"))
    rc, _, err, seconds = _cli(capsys, "check", f)
    assert rc == 1
    assert re.search(r"nested\.arch:(5:7|6:9): error: elaborating this takes more than 500,000 steps", err)
    assert "--limit steps=N" in err and "archc.api.limits(steps=N)" in err
    assert seconds < 20


def test_raising_the_step_budget_lets_the_program_through(tmp_path: pathlib.Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "nested.arch", NESTED.replace("COUNT", "30"))  # 27,000 statements
    rc, _, err, _ = _cli(capsys, "check", f, "--limit", "steps=10000")
    assert rc == 1 and "more than 10,000 steps" in err
    assert _cli(capsys, "check", f, "--limit", "steps=10000", "--limit", "steps=100000")[0] == 0
    for command in ("flops", "plan"):
        assert _cli(capsys, command, f, "--limit", "steps=10000")[0] == 1


def test_doubling_recursion_stops_fast_and_small(tmp_path: pathlib.Path) -> None:
    """A block calling itself twice per level, 60 levels deep: 2^60 calls, stopped by the step budget
    in a separate process whose peak memory is measured."""
    f = _write(tmp_path, "doubling.arch", DOUBLING.replace("LEVELS", "60"))
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "archc.cli", "check", f], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    peak_kb = 0  # sampled current RSS: a child's ru_maxrss counts the parent's image it was forked from
    while proc.poll() is None and time.monotonic() - start < 120:
        peak_kb = max(peak_kb, _rss_kb(proc.pid))
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=120)
    seconds = time.monotonic() - start
    assert proc.returncode == 1, stderr
    assert "doubling.arch:7:5: error: elaborating this takes more than 500,000 steps" in stderr
    assert seconds < 30
    assert peak_kb < 1_000_000, f"{peak_kb} kB"  # about 150 MB


def test_node_budget(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "chain.arch", CHAIN.replace("COUNT", "3000"))
    rc, _, err, _ = _cli(capsys, "check", f, "--limit", "nodes=1000")
    assert rc == 1
    assert "chain.arch:5:5: error: the graph has more than 1,000 nodes here [structure]" in err
    assert "--limit nodes=N" in err
    assert _cli(capsys, "check", f, "--limit", "nodes=5000")[0] == 0


def test_node_budget_inside_a_block_names_the_innermost_statement(tmp_path: pathlib.Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "doubling.arch", DOUBLING.replace("LEVELS", "12"))  # 4,096 relus
    rc, _, err, _ = _cli(capsys, "check", f, "--limit", "nodes=1000")
    assert rc == 1 and "doubling.arch:4:5: error: the graph has more than 1,000 nodes here" in err
    assert _cli(capsys, "check", f)[0] == 0


def test_depth_budget(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DOUBLING.replace("LEVELS", "8").replace("q = A(p, n - 1)", "q = p")
    f = _write(tmp_path, "deep.arch", text)
    assert _cli(capsys, "check", f)[0] == 0
    rc, _, err, _ = _cli(capsys, "check", f, "--limit", "depth=5")
    assert rc == 1 and "blocks nest deeper than 5" in err and "--limit depth=N" in err


STRIDED = """\
size batch = 1, H = 224
block Net(n = 300) {
  in x: [batch, chan = 4, h = H]
  y = seq(x) {
    for i in 0..n: conv(chan -> 4, k = 3, stride = 2, pad = 1, over = [h])
  }
  out y
}
"""


def test_size_depth_budget_stops_a_runaway_stack_of_strided_layers(tmp_path: pathlib.Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Found by the 100,000-case fuzz run (a mutant of MobileNetV2 with hundreds of stride-2 layers): each
    adds a floor to the symbolic size, sympy slowed down and then recursed past Python's limit after 15 s
    ("nests too deeply", not located). Now: concrete sizes check at once, the symbolic run stops at the
    layer where the size nests past the budget, located, and `check` leaves the constraints out."""
    f = _write(tmp_path, "strided.arch", STRIDED)
    rc, out, err, took = _cli(capsys, "check", f)
    assert rc == 0 and "ok:" in out and took < 10, (err, took)
    rc, _, err, took = _cli(capsys, "check", f, "--symbolic")
    assert rc == 1 and "nests floors and ceilings more than 48 deep here" in err and took < 10
    assert "strided.arch:5:" in err and "--limit size_depth=N" in err
    rc, _, err, _ = _cli(capsys, "check", f, "--symbolic", "--limit", "size_depth=10")
    assert "more than 10 deep" in err
    assert _cli(capsys, "check", _write(tmp_path, "ok.arch", STRIDED.replace("300", "20")), "--symbolic")[0] == 0


def test_file_size_budget(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = _write(tmp_path, "big.arch", CHAIN.replace("COUNT", "3") + "# padding\n" * 200)
    rc, _, err, _ = _cli(capsys, "check", big, "--limit", "bytes=1000")
    assert rc == 1 and "is larger than 1,000 bytes [io]" in err and "--limit bytes=N" in err
    main = _write(tmp_path, "main.arch", 'import "big.arch"\n')
    rc, _, err, _ = _cli(capsys, "check", main, "--limit", "bytes=1000")
    assert rc == 1 and "main.arch:1:1: error:" in err and "[import]" in err
    assert _cli(capsys, "check", big, "--limit", "bytes=10000")[0] == 0
    huge = _write(tmp_path, "huge.arch", "#" * (1 << 20) + "\n" + CHAIN.replace("COUNT", "3"))
    assert "is larger than 1,048,576 bytes" in _cli(capsys, "check", huge)[2]  # the default


@pytest.mark.parametrize("bad", ["step=5", "steps=0", "steps=-3", "steps=many", "steps"])
def test_a_bad_limit_is_a_usage_error(bad: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "chain.arch", CHAIN.replace("COUNT", "3"))
    with pytest.raises(SystemExit) as e:
        cli.main(["check", f, "--limit", bad])
    assert e.value.code == 2
    assert "usage error: argument --limit" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["build", "render"])
def test_build_and_render_take_the_option(command: str, tmp_path: pathlib.Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "chain.arch", CHAIN.replace("COUNT", "3000"))
    out = str(tmp_path / ("gen" if command == "build" else "chain.dot"))
    rc, _, err, _ = _cli(capsys, command, f, "-o", out, "--limit", "nodes=1000")
    assert rc == 1 and "more than 1,000 nodes" in err


def test_the_python_api_takes_limits() -> None:
    m = api.loads(CHAIN.replace("COUNT", "3000"), "chain.arch")
    with api.limits(nodes=1000), pytest.raises(api.ArchError, match="more than 1,000 nodes"):
        m.check()
    assert len(m.check().graph) == 3002
    with pytest.raises(ValueError, match="no limit named"):
        with api.limits(node=5):
            pass


def test_a_100k_op_chain_checks_in_seconds(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Elaboration and the cost pass stay linear: 100,000 chained ops in a few seconds each (about 3.5 s
    and 5 s on a loaded 2-core machine; the bound is generous)."""
    f = _write(tmp_path, "chain.arch", CHAIN.replace("COUNT", "100000"))
    rc, out, err, seconds = _cli(capsys, "check", f)
    assert rc == 0, err
    assert "ok: 100002 nodes" in out
    assert seconds < 20
    rc, out, err, seconds = _cli(capsys, "flops", f, "--no-layers")
    assert rc == 0, err
    assert seconds < 25


HUB = """block Net() {
  in x: [b = 1, c = 4]
  y = relu(x)
  for i in 0..COUNT {
    y = relu(y + x)
  }
  out y
}
"""


@pytest.mark.parametrize("style", ["graph", "circuit"])
def test_render_refuses_a_diagram_too_large_to_lay_out(style: str, tmp_path: pathlib.Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "chain.arch", CHAIN.replace("COUNT", "6000"))
    out = str(tmp_path / "chain.svg")
    rc, _, err, seconds = _cli(capsys, "render", f, "--style", style, "-o", out)
    assert rc == 1 and "the diagram would have 6,002 boxes, more than the 5,000" in err
    assert "--depth 1" in err and "--limit draw=N" in err
    assert seconds < 20 and not pathlib.Path(out).exists()
    if style == "graph":  # no layout: DOT text is written whatever its size
        assert _cli(capsys, "render", f, "-o", str(tmp_path / "chain.dot"))[0] == 0


def test_render_draws_a_large_circuit_when_the_limit_is_raised(tmp_path: pathlib.Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "chain.arch", CHAIN.replace("COUNT", "6000"))
    rc, out, err, seconds = _cli(capsys, "render", f, "--style", "circuit", "-o", str(tmp_path / "c.svg"),
                                 "--limit", "draw=10000")
    assert rc == 0, err
    assert seconds < 30


def test_render_stops_dot_at_its_time_limit(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A few hundred ops that all read one input: small, but `dot` takes minutes over it."""
    from archc.codegen.diagrams import graph
    if not graph.have_dot():
        pytest.skip("needs Graphviz's dot")
    f = _write(tmp_path, "hub.arch", HUB.replace("COUNT", "100"))
    rc, _, err, seconds = _cli(capsys, "render", f, "-o", str(tmp_path / "hub.svg"), "--limit", "dot_seconds=2")
    assert rc == 1 and "Graphviz's dot did not lay out the diagram (202 boxes, 301 edges) within 2 s" in err
    assert "--limit dot_seconds=N" in err
    assert seconds < 20


def test_a_long_repetition_folds_in_linear_time(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `seq` of 20,000 identical blocks draws as one box x20000 (folding scanned the graph once per
    element before: minutes)."""
    text = ("block B() {\n  in x: [b = 1, c = 4]\n  fc = linear(x, c -> 4)\n  out relu(fc)\n}\n"
            "entry block Net() {\n  in x: [b = 1, c = 4]\n  s = seq(x) {\n    for i in 0..20000: B()\n  }\n"
            "  out s\n}\n")
    f = _write(tmp_path, "stack.arch", text)
    rc, out, err, seconds = _cli(capsys, "render", f, "-o", str(tmp_path / "stack.dot"))
    assert rc == 0, err
    assert "×20000" in out
    assert seconds < 30
