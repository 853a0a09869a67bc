"""Random mutations of every .arch source never crash archc.

Thousands of mutants of the examples, the test programs and the standard library
(characters and tokens deleted, duplicated, swapped and inserted) go through
`archc check` (and some through `flops`) in-process, by `archc.cli.main`, and a few
through a real `archc` process. Whatever the input, the exit status is 0 or 1, and on 1
stderr starts with a located error `FILE:LINE:COL: error: ... [code]` (`archc: error:`
only where no location exists), and never holds a Python traceback.

The mutants are drawn from a fixed seed: mutant `i` of a file is always the same, so a
failure message (file, index, mutations) reproduces with `mutant(text, seed_of(file, i))`.
A crash found here is fixed in the compiler and its input added below (REGRESSIONS) or
to tests/errors/.

The files are globbed when the tests run, so new examples join automatically. Each file
gets an equal share of a CPU-time budget, so more mutants of the files that check
fast, and at least MIN_PER_FILE; mini_resnet and the cheapest files make up MIN_TOTAL.
Hypothesis adds programs built to put odd values where sizes and op arguments go.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import difflib
import io
import random
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archc.cli import main

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "data" / "mini_resnet.arch"

MIN_TOTAL = 3000  # mutants run in-process, at least
MIN_PER_FILE = 80
BUDGET_S = 8.0  # CPU seconds of mutants, shared equally by the files; see plan()
SEED = 20240

# A whole line of stderr, one of: a diagnostic, a quoted source line or caret (4
# spaces), a note without location, or the closing count.
_HEAD = re.compile(r"^(?:\S.*?:\d+:\d+|archc): (?:error|warning): .* \[[a-z-]+\]$")
_LINE = re.compile(r"^(?:\S.*?:\d+:\d+: note: .*|    .*|archc: \d+ errors)$")
_FIRST = re.compile(r"^(?:\S.*?:\d+:\d+: error: |archc: error: )")
# lark's own words, which a syntax error must never show
_LARK = re.compile(r"\b(?:RPAR|LPAR|LSQB|RSQB|LBRACE|RBRACE|COMMA|COLON|EQUAL|__ANON_\d+)\b|\$END|Expected one of")

# Tokens: strings, comments, names, numbers, multi-character operators, whitespace,
# and any other single character.
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?'
                   r"|\.\.\.|\.\.|->|\*\*|//|[=!<>]=|\s+|.", re.S)
# Extra material for insertions: what a user can type that the sources rarely hold.
ODD_TOKENS = ["99999999999999999999", "0", "-1", "1e999", "0.5", '"same"', '"\\u12"', "...", "..",
              "->", "**", "//", "%", "block", "entry", "seq", "for", "in", "out", "param", "if", "else",
              "then", "assert", "import", "size", "true", "false", "none", "as", "not", "and", "i64", "(", ")",
              "[",
              "]", "{", "}", ",", ":", "=", "\n", "x", "chan", "batch", "H"]
ODD_CHARS = "(){}[],:=+-*/%.<>!\"'#\\\n\t 0123456789abcxyzHW_é\x00"


def sources() -> list[Path]:
    """Every .arch file to mutate, found now: examples, test data, standard library."""
    found = set(ROOT.glob("examples/*.arch")) | set(ROOT.glob("examples/zoo/*.arch"))
    found |= set(ROOT.glob("tests/data/*.arch"))
    found |= set(ROOT.glob("dsl/stdlib/*.arch")) | {MINI}
    return sorted(found)


def seed_of(path: Path, index: int) -> int:
    return zlib.crc32(f"{SEED}:{path.relative_to(ROOT)}:{index}".encode())


def mutate_once(text: str, rng: random.Random) -> tuple[str, str]:
    """One random edit of characters or of tokens; returns the new text and a description."""
    kind = rng.choice(["delete", "duplicate", "swap", "insert"])
    if rng.random() < 0.4 or not text:
        i = rng.randrange(len(text) + 1)
        if kind == "delete":
            return text[:i] + text[i + 1:], f"delete char {i}"
        if kind == "duplicate":
            return text[:i] + text[i:i + 1] * 2 + text[i + 1:], f"duplicate char {i}"
        if kind == "swap" and len(text) > 1:
            j = rng.randrange(len(text))
            a, b = sorted((min(i, len(text) - 1), j))
            return text[:a] + text[b] + text[a + 1:b] + text[a] + text[b + 1:], f"swap chars {a} {b}"
        c = rng.choice(ODD_CHARS)
        return text[:i] + c + text[i:], f"insert char {c!r} at {i}"
    toks = TOKEN.findall(text)
    solid = [k for k, t in enumerate(toks) if not t.isspace()]
    if not solid:
        return text + "x", "append x"
    i = rng.choice(solid)
    if kind == "delete":
        what = f"delete token {toks[i]!r}"
        del toks[i]
    elif kind == "duplicate":
        what = f"duplicate token {toks[i]!r}"
        toks.insert(i, toks[i] + (" " if rng.random() < 0.5 else ""))
    elif kind == "swap":
        j = rng.choice(solid)
        what = f"swap tokens {toks[i]!r} {toks[j]!r}"
        toks[i], toks[j] = toks[j], toks[i]
    else:
        new = rng.choice(ODD_TOKENS) if rng.random() < 0.3 else toks[rng.choice(solid)]
        what = f"insert token {new!r}"
        toks.insert(i, " " + new + " " if rng.random() < 0.5 else new)
    return "".join(toks), what


def mutant(text: str, seed: int) -> tuple[str, list[str], list[str]]:
    """Mutant number `seed` of `text`: 1 to 3 edits, and the command to run it with."""
    rng = random.Random(seed)
    edits = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        text, what = mutate_once(text, rng)
        edits.append(what)
    command = rng.choice([["check"]] * 12 + [["check", "--symbolic"], ["check", "--ir"], ["check", "--json"],
                                             ["flops"], ["flops", "--symbolic", "--memory"],
                                             ["flops", "--json", "--convention", "full"],
                                             ["flops", "--depth", "1", "--convention", "macs"],
                                             ["memory"], ["memory", "--json", "--optimizer", "sgd"]])
    return text, edits, command


def run_main(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, err.getvalue()


def problem(status: object, stderr: str) -> str | None:
    """What is wrong with this outcome of one run, or None."""
    if status not in (0, 1):
        return f"exit status {status!r}"
    if "Traceback" in stderr:
        return "a traceback on stderr"
    lines = stderr.splitlines()
    if status == 1:
        if not lines or not _FIRST.match(lines[0]):
            return "stderr does not start with a located error"
        for line in lines:
            if not (_HEAD.match(line) or _LINE.match(line)):
                return f"a line of stderr that is not part of a diagnostic: {line!r}"
            if line.endswith("[syntax]") and _LARK.search(line):
                return f"a syntax error in lark's words: {line!r}"
    elif any(": error: " in line for line in lines):
        return "an error printed with exit status 0"
    return None


def check_mutant(original: Path, text: str, argv: list[str], where: Path) -> tuple[str, str | None]:
    """Run one mutant in-process: (what it gave: ok / syntax / error, the problem or None)."""
    path = where / original.name
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        status, stderr = run_main([*argv, str(path)])
    except BaseException as e:  # noqa: BLE001 - any escape is the bug being looked for
        return "crash", f"{type(e).__name__}: {e}"
    found = problem(status, stderr)
    kind = "ok" if status == 0 else "syntax" if stderr.split("\n", 1)[0].endswith("[syntax]") else "error"
    return kind, None if found is None else f"{found}\n--- stderr ---\n{stderr[:2000]}"


def _diff(a: str, b: str) -> str:
    return "".join(list(difflib.unified_diff(a.splitlines(True), b.splitlines(True), n=1))[2:40])


def plan(files: list[Path], texts: dict[Path, str], scratch: Path) -> dict[Path, int]:
    """How many mutants each file gets: an equal share of BUDGET_S at the CPU cost of one
    check of the unmutated file (CPU time: other processes on the machine do not skew it),
    at least MIN_PER_FILE; mini_resnet and the cheapest files make up MIN_TOTAL."""
    cost = {}
    for f in files:
        run_main(["check", str(_stage(f, texts[f], scratch))])  # warm caches (std imports)
        t = time.process_time()
        run_main(["check", str(_stage(f, texts[f], scratch))])
        cost[f] = max(time.process_time() - t, 1e-3)
    counts = {f: max(MIN_PER_FILE, int(BUDGET_S / len(files) / cost[f])) for f in files}
    short = MIN_TOTAL - sum(counts.values())
    if short > 0:
        cheap = [MINI] + [f for f in sorted(files, key=lambda f: cost[f]) if f != MINI][:2]
        for k, f in enumerate(cheap):
            counts[f] += short // len(cheap) + (1 if k < short % len(cheap) else 0)
    return counts


def _stage(original: Path, text: str, scratch: Path) -> Path:
    """A folder beside the mutant holding the original's sibling .arch files, so that
    `import "other.arch"` still resolves; returns where the mutant is written."""
    where = scratch / original.parent.relative_to(ROOT)
    if not where.exists():
        where.mkdir(parents=True)
        for sib in original.parent.glob("*.arch"):
            (where / sib.name).write_text(sib.read_text())
    (where / original.name).write_text(text)
    return where / original.name


def test_thousands_of_mutants_never_crash(tmp_path: Path, record_property) -> None:
    files = sources()
    assert MINI in files
    texts = {f: f.read_text() for f in files}
    counts = plan(files, texts, tmp_path)
    start, cpu = time.perf_counter(), time.process_time()
    kinds = {"ok": 0, "syntax": 0, "error": 0}
    for f in files:
        where = _stage(f, texts[f], tmp_path).parent
        for i in range(counts[f]):
            text, edits, argv = mutant(texts[f], seed_of(f, i))
            kind, bad = check_mutant(f, text, argv, where)
            assert bad is None, (f"{f.relative_to(ROOT)} mutant {i} ({'; '.join(edits)}), "
                                 f"`archc {' '.join(argv)}`: {bad}\n--- diff ---\n{_diff(texts[f], text)}")
            kinds[kind] += 1
        _stage(f, texts[f], tmp_path)  # the original back, for the files that import it
    total = sum(kinds.values())
    per_file = ", ".join(f"{f.relative_to(ROOT)}: {n}" for f, n in counts.items())
    print(f"\nfuzz: {total} mutants in {time.perf_counter() - start:.1f} s "
          f"({time.process_time() - cpu:.1f} s CPU): {kinds} ({per_file})")
    record_property("mutants", total)
    assert total >= MIN_TOTAL
    # The mutants reach every phase: some still compile, some fail to parse, and some
    # parse but fail later (names, shapes, sizes).
    assert min(kinds.values()) >= total // 100, kinds


# ---- regressions: inputs that once crashed archc ------------------------------------------

REGRESSIONS = {
    # a bad escape in a string escaped from the AST builder as lark's VisitError
    "bad_escape": 'import "\\u12"\nblock B() { in x: [n = 2]\n out x }',
    # a NUL in an import path made os.path.getsize raise ValueError
    "nul_in_import": 'import "a\\u0000b.arch"\nblock B() { in x: [n = 2]\n out x }',
    # deep expressions overflowed Python's stack inside lark's transformer (VisitError)
    "deep_calls": "block B() { in x: [n = 2]\n y = " + "relu(" * 300 + "x" + ")" * 300 + "\n out y }",
    "long_sum": "block B() { in x: [n = 2]\n y = x" + " + x" * 3000 + "\n out y }",
    # a zero-size axis left `flops` with an empty table to print
    # (found by hypothesis, below:)
    # inf % x is nan, and comparing nan raised TypeError inside sympy
    "nan_comparison": "block B() { in x: [n = 2]\n y = if (1e999 % 1e-9) > 3 then x else x\n out y }",
    # (-8.0) ** 0.5 is a complex number in Python
    "complex_power": "block B() { in x: [n = 2]\n y = if (-8.0) ** 0.5 > 1 then x else x\n out y }",
    # a float compared with a symbolic size reached sympy-only helpers (float.free_symbols)
    "float_vs_size": "size H = 8\nblock B() { in x: [n = 2, h = H]\n y = if H < 3 ** 2.0 then relu(x) else x\n"
                     " out y }",
    # a stride of a zero size: explaining the error substituted H = 0 and int()'ed sympy's zoo
    "zero_size_stride": "size H = 0, N\nblock B() { in x: [n = N, c = H, h = H, w = H]\n"
                        " conv1 = conv(x, c -> 4, k = 3, stride = H, pad = H)\n out conv1 }",
    "zero_axis": "block B() { in x: [n = 0, c = 3]\n fc = linear(x, c -> 4)\n out fc }",
}


def _commands() -> list[list[str]]:
    return [["check"], ["check", "--symbolic"], ["check", "--ir"], ["flops"], ["flops", "--json"],
            ["flops", "--symbolic", "--memory", "--depth", "1"], ["memory"]]


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions_found_by_fuzzing(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.arch"
    path.write_text(REGRESSIONS[name])
    for argv in _commands():
        status, stderr = run_main([*argv, str(path)])
        assert problem(status, stderr) is None, (argv, stderr)


# ---- hostile inputs ---------------------------------------------------------------------------

DEEP = 5000


def _hostile(tmp: Path) -> dict[str, tuple[str, int, str]]:
    """name -> (path, expected exit status, a piece of the expected first line of stderr)."""
    def write(name: str, data: str | bytes) -> str:
        p = tmp / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return str(p)

    body = "block B() {\n  in x: [n = 2, c = 3]\n  y = %s\n  out y\n}\n"
    return {
        "directory": (str(tmp), 1, "is not a regular file"),
        "missing file": (str(tmp / "nope.arch"), 1, "No such file or directory"),
        "binary file": (write("bin.arch", bytes(range(256)) * 8), 1, "is not UTF-8 text"),
        "binary but utf-8": (write("ctl.arch", "block B() {\x1b[2J\x00\x07}"), 1, "is not .arch text"),
        "control characters": (write("esc.arch", "block B() {\x1b[2J\x07}"), 1, "unexpected character"),
        "empty file": (write("empty.arch", ""), 1, "defines no block"),
        "only comments": (write("comments.arch", "# nothing\n# here\n"), 1, "defines no block"),
        "huge size": (write("huge.arch", "size H = 99999999999999999999\nblock B() {\n  in x: [n = 2, h = H]\n"
                                         "  p = maxpool(x, k = 3, over = [h])\n  out p\n}\n"), 0, ""),
        "huge kernel": (write("hk.arch", body % "conv(x, c -> 4, k = 99999999999999999999, over = [n])"),
                        1, "error"),
        "float overflow": (write("inf.arch", body % "x * 1e999"), 0, ""),
        "deep parentheses": (write("parens.arch", body % ("(" * DEEP + "relu(x)" + ")" * DEEP)), 0, ""),
        "deep negation": (write("neg.arch", body % ("-" * DEEP + "x")), 1, "nests more than"),
        "deep lists": (write("lists.arch", body % ("[" * DEEP + "]" * DEEP)), 1, "nests more than"),
        "deep not": (write("not.arch", body % ("if " + "not " * DEEP + "true then x else x")), 1,
                     "nests more than"),
        "long line": (write("long.arch", body % ("relu(x)" + " " * 200_000 + "+ zz")), 1, "'zz' is not defined"),
        "long name": (write("name.arch", body % ("a" * 100_000)), 1, "is not defined"),
        "many errors": (write("many.arch", "block B() {\n  in x: [n = 2]\n" +
                              "".join(f"  y{i} = q{i}\n" for i in range(300)) + "  out x\n}\n"), 1,
                        "'q0' is not defined"),
        "form feed and crlf": (write("ff.arch", "block B() {\r\n\x0c  in x: [n = 2]\r\n  y = rleu(x)\r\n"
                                                "  out y\r\n}\r\n"), 1, ":3:7: error: no op or block named 'rleu'"),
        "byte order mark": (write("bom.arch", "\ufeffblock B() { in x: [n = 2]\n out x }"), 1, "unexpected"),
        "too large": (write("big.arch", "#" * (5 << 20)), 1, "larger than"),
    }


HOSTILE = ["directory", "missing file", "binary file", "binary but utf-8", "control characters", "empty file",
           "only comments",
           "huge size", "huge kernel", "float overflow", "deep parentheses", "deep negation", "deep lists",
           "deep not", "long line", "long name", "many errors", "form feed and crlf", "byte order mark",
           "too large"]


def test_every_hostile_input_is_run(tmp_path: Path) -> None:
    assert sorted(_hostile(tmp_path)) == sorted(HOSTILE)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_inputs_give_a_located_error_or_a_result(name: str, tmp_path: Path) -> None:
    path, want_status, want_text = _hostile(tmp_path)[name]
    for argv in _commands():
        status, stderr = run_main([*argv, path])
        assert problem(status, stderr) is None, (argv, stderr[:3000])
        assert status == want_status, (argv, stderr[:3000])
        first = stderr.split("\n", 1)[0]
        assert want_text in first, (argv, first[:500])
        quoted = [line for line in stderr.splitlines() if line.startswith("    ")]
        assert all(len(line) < 200 for line in quoted), "a quoted source line was not shortened"


# ---- hypothesis: odd values where the grammar wants numbers and op arguments --------------

_numbers = st.sampled_from(["0", "1", "2", "3", "7", "-1", "-3", "0.5", "2.0", "1e999", "1e-9",
                            "99999999999999999999", "H", "N", "true", '"same"', '"valid"', '"x"', "[]",
                            "[1, 2]", "[[1, 2], [0, 1]]", "[0, 0, 0]"])


@st.composite
def _exprs(draw, depth: int = 2) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(_numbers)
    op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "<", "and"]))
    a, b = draw(_exprs(depth - 1)), draw(_exprs(depth - 1))
    if draw(st.integers(0, 5)) == 0:
        return f"if {a} > {b} then {a} else {b}"
    return f"({a} {op} {b})"


_AXES = ["n", "c", "h", "w", "q"]


def _arg_value(kind: str, choices: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Mostly sensible values of an op argument's kind, sometimes anything."""
    axis = st.sampled_from(_AXES)
    small = st.sampled_from(["1", "2", "3", "4"])
    by_kind = {
        "map": st.builds(lambda a, e, r: f"{a} -> {r + ' = ' if r else ''}{e}", axis, small | _exprs(1),
                         st.sampled_from(["", "d", "c"])),
        "axis": axis,
        "axes": st.lists(axis, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]") | axis,
        "str": st.sampled_from([f'"{c}"' for c in choices] + ['"nope"', "3", '"n c h w -> n (c h) w"',
                                                               '"n c h w, n c h w -> n c"']),
        "renames": st.builds(lambda a, b: f"{a} -> {b}", axis, axis),
        "sizes_kw": st.builds(lambda a, e: f"{a} = {e}", axis, small | _exprs(1)),
        "size": small | _exprs(),
        "sizes": small | st.sampled_from(["[1, 2]", "[3, 3]", "[2, 1, 1]"]) | _exprs(),
        "ints": small | st.sampled_from(["-1", "[1, -2]", "[-3, 3, 0]", "-H"]) | _exprs(),
        "pad": st.sampled_from(["0", "1", '"same"', '"valid"', "[1, 1]", "[[0, 1], [1, 0]]", "[1, 2, 1, 2]"])
        | _exprs(),
        "bool": st.sampled_from(["true", "false"]) | _exprs(1),
        "float": st.sampled_from(["0.1", "0.5", "1.0"]) | _exprs(1),
    }
    return by_kind.get(kind, _exprs())


@st.composite
def _op_programs(draw) -> str:
    from archc.ops.registry import BY_NAME
    sig = draw(st.sampled_from(sorted(BY_NAME.values(), key=lambda op: op.name)))
    lo, hi = (sig.tensors, sig.tensors) if isinstance(sig.tensors, int) else sig.tensors
    args = [draw(st.sampled_from(["x", "y", "z", "ids"])) for _ in range(draw(st.integers(lo, min(hi, 3))))]
    for p in sig.params:
        if draw(st.integers(0, 2)) == 0:
            continue
        value = draw(_arg_value(p.kind, p.choices))
        args.append(value if p.kind in ("map", "renames", "sizes_kw") else f"{p.name} = {value}")
    size = draw(st.sampled_from(["4", "H"]) | _exprs(1))
    return (f"size H = 8, N = 2\n"
            f"block B() {{\n  in x: [n = N, c = 4, h = H, w = H]\n  in y: [n = N, c = 4, h = H, w = H]\n"
            f"  in z: [n = N, c = 4, h = 1, w = H]\n  in ids: i64[n = N, h = H]\n"
            f"  layer = {sig.name}({', '.join(args)})\n  extra = linear(x, c -> {size})\n  out layer\n}}\n")


_fast = settings(max_examples=250, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


_PART = st.sampled_from(["", "0", "1", "-1", "-4", "H", "H // 2", "9", "none", "1.5", '"a"', "x"]) | _exprs(1)


@st.composite
def _syntax_programs(draw) -> str:
    """The constructs of the language walls: slicing (`x[h = a:b:c]`, `x[h = i]`), `none`, `as "name"`
    and calls of blocks without a name, with odd values."""
    items = []
    for _ in range(draw(st.integers(1, 3))):
        axis = draw(st.sampled_from(_AXES + ["x"]))
        if draw(st.booleans()):
            items.append(f"{axis} = {draw(_PART) or '0'}")
        else:
            step = draw(_PART)
            items.append(f"{axis} = {draw(_PART)}:{draw(_PART)}" + (f":{step}" if step else ""))
    target = draw(st.sampled_from(["x", "n", "none", "Crop(x, 2)", "relu(x)", "ids"]))
    name = draw(st.sampled_from(['"layer{i}"', '"pre-logits{i}"', '"{i}"', '"x"', '"{j}"', '"a.b{i}"', '""',
                                 '"__class__{i}"', '"for{i}"']))
    value = draw(st.sampled_from(["none", "2", "H", "[1, 2] + [3]", "H // 3", "0", "-1"]))
    call = draw(st.sampled_from(["Crop(x, p)", "Layer(x, 4)", "Crop(x, none)", "Layer(x, p)"]))
    return ("size H = 8, N = 2\nblock Crop(k) {\n  in x: [n, c, h, w]\n  out x[h = 0:k]\n}\n"
            "block Layer(d) {\n  in x: [n, c, h, w]\n  fc = conv(x, c -> d, k = 1)\n  out fc\n}\n"
            f"block B(p = {value}) {{\n  in x: [n = N, c = 4, h = H, w = H]\n  in ids: i64[n = N, h = H]\n"
            f"  for i in 0..2 {{\n    l[i] = linear(x, w -> 4) as {name}\n  }}\n"
            f"  s = {target}[{', '.join(items)}]\n  u = relu({call})\n  out s\n}}\n")


@_fast
@given(program=_syntax_programs(), command=st.sampled_from([["check"], ["flops"], ["check", "--symbolic"],
                                                            ["build", "-o", "{tmp}"]]))
def test_new_syntax_with_odd_values_never_crashes(program: str, command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "syntax.arch"
    path.write_text(program)
    argv = [a.replace("{tmp}", str(tmp_path / "out")) for a in command]
    status, stderr = run_main([argv[0], str(path), *argv[1:]])
    assert problem(status, stderr) is None, f"{program}\n{stderr}"


@_fast
@given(program=_op_programs(), command=st.sampled_from([["check"], ["flops"], ["check", "--symbolic"]]))
def test_every_op_with_odd_arguments_never_crashes(program: str, command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "op.arch"
    path.write_text(program)
    status, stderr = run_main([*command, str(path)])
    assert problem(status, stderr) is None, f"{program}\n{stderr}"


@_fast
@given(default=_exprs(3), axis=_exprs(2), loop=_exprs(1), set_value=st.sampled_from(
    [None, "0", "-4", "3", "99999999999999999999", "1.5", "true", "x"]))
def test_odd_size_arithmetic_never_crashes(default: str, axis: str, loop: str, set_value: str | None,
                                           tmp_path: Path) -> None:
    program = (f"size H = {default}, N\n"
               f"block B(k = 3) {{\n  in x: [n = N, c = {axis}, h = H, w = H]\n"
               f"  y = x\n  for i in 0..{loop} {{\n    y = relu(y)\n  }}\n"
               f"  conv1 = conv(y, c -> 4, k = k, stride = {axis}, pad = {loop})\n  out conv1\n}}\n")
    path = tmp_path / "sizes.arch"
    path.write_text(program)
    argv = ["check", str(path), "--set", "N=2"] + ([] if set_value is None else ["--set", f"H={set_value}"])
    status, stderr = run_main(argv)
    assert problem(status, stderr) is None, f"{program}\n{argv}\n{stderr}"


# ---- a real process: the console script's behaviour, not only main()'s ------------------------

N_SUBPROCESS = 20


def test_mutants_in_a_real_process(tmp_path: Path) -> None:
    """~20 mutants (and the hostile files) through `python -m archc.cli`, in parallel:
    exit status 0/1, a located first line on stderr, no traceback, whatever the input."""
    jobs = []
    files = sources()
    for i in range(N_SUBPROCESS):
        f = files[i % len(files)]
        text, edits, argv = mutant(f.read_text(), seed_of(f, 10_000 + i))
        where = tmp_path / f"m{i}"
        where.mkdir()
        (where / f.name).write_text(text)
        jobs.append((argv + [str(where / f.name)], f"{f.name} mutant {10_000 + i} ({'; '.join(edits)})"))
    (tmp_path / "hostile").mkdir()
    hostile = _hostile(tmp_path / "hostile")
    for name in ("directory", "binary file"):
        jobs.append((["check", hostile[name][0]], name))

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "archc.cli", *argv], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, [argv for argv, _ in jobs]))
    for (argv, what), res in zip(jobs, results):
        assert problem(res.returncode, res.stderr) is None, f"{what}: `archc {' '.join(argv)}`\n{res.stderr}"


def test_the_oracle_rejects_what_it_must() -> None:
    assert problem(0, "") is None
    assert problem(1, "f.arch:3:7: error: 'q' is not defined [name]\n      y = q\n          ^\n") is None
    assert problem(1, "archc: error: f.arch cannot be read: No such file or directory [io]\n") is None
    assert problem(1, "Traceback (most recent call last):\n  File ...\nKeyError: 'x'\n") is not None
    assert problem(1, "f.arch: error: no line or column [structure]\n") is not None
    assert problem(1, "f.arch:1:2: error: unexpected RPAR [syntax]\n") is not None
    assert problem(1, "") is not None
    assert problem(2, "archc: usage error: ...\n") is not None
    assert problem(0, "f.arch:1:1: error: x [name]\n") is not None
    assert problem(1, "f.arch:1:1: error: x [name]\n    y\n    ^\nKeyError: 'x'\n") is not None
