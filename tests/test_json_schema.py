"""docs/json.md and the JSON that `archc check/flops --json` print cannot drift apart.

The schema tables of docs/json.md (the rows after `<!-- schema: check -->` and
`<!-- schema: flops -->`) are read here and checked against real output, both ways:
every documented field is present with a documented type, and every field of the
output is documented. The figures themselves are checked against oracles: a
hand-written torch module of tests/data/mini_resnet.arch (parameters, buffers,
FlopCounterMode, output shape) and sympy (the `_expr` strings evaluate to the
integer figures).
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
from typing import Any

import pytest
import sympy

from archc import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "json.md"
MINI = str(ROOT / "tests" / "data" / "mini_resnet.arch")

# Free sizes without values (null figures), a tuple type (nested axes) and constraints.
FREE = """\
size batch = 1, L

block Net(d = 64) {
  in x: [batch, tok = L, chan = d]
  fc = linear(x, chan -> 4 * d)
  p = maxpool(fc, k = 2, over = [tok])
  a, b = split(p, axis = chan, parts = 2)
  out a + b
}
"""

TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}

_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \| .* \|$")


def schema(name: str) -> dict[str, set[str]]:
    """path -> allowed JSON types, from the table after `<!-- schema: name -->`."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- schema: {name} -->")
    out: dict[str, set[str]] = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        m = _ROW.match(line)
        if m:
            types = {t.strip() for t in m.group(2).split(" or ")}
            assert types <= set(TYPES), f"json.md: unknown type in {line!r}"
            out[m.group(1)] = types
    assert len(out) > 10, f"json.md: no schema table for {name}"
    return out


def run(*argv: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(list(argv)) == 0
    return json.loads(out.getvalue())


def validate(doc: Any, sch: dict[str, set[str]], seen: set[str], optional: set[str] = frozenset()) -> None:
    def walk(value: Any, path: str) -> None:
        assert path in sch, f"the output has '{path}', which docs/json.md does not document"
        seen.add(path)
        kinds = [t for t in sch[path] if TYPES[t](value)]
        assert kinds, f"'{path}' is {value!r}, documented as {' or '.join(sorted(sch[path]))}"
        if isinstance(value, dict):
            if f"{path}.*" in sch:
                for v in value.values():
                    walk(v, f"{path}.*")
                return
            prefix = f"{path}." if path else ""
            members = [p[len(prefix):] for p in sch if p.startswith(prefix) and p != path
                       and re.fullmatch(r"[a-z_]+", p[len(prefix):])]
            missing = set(members) - set(value) - optional
            assert not missing, f"'{path or 'the document'}' lacks the documented {sorted(missing)}"
            order = [k for k in members if k in value]
            assert list(value)[:len(order)] == order, f"'{path}': keys not in the documented order"
            for k, v in value.items():
                walk(v, prefix + k)
        elif isinstance(value, list):
            for v in value:
                walk(v, f"{path}[]")

    root = {k: v for k, v in sch.items()}
    root[""] = {"object"}
    sch = root
    walk(doc, "")


@pytest.fixture(scope="module")
def free_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("json") / "free.arch"
    path.write_text(FREE)
    return str(path)


def test_check_json_matches_the_documented_schema(free_file):
    sch, seen = schema("check"), set()
    for argv in (["check", MINI, "--json"], ["check", MINI, "--json", "--symbolic"],
                 ["check", free_file, "--json"], ["check", free_file, "--json", "--set", "L=8"]):
        validate(run(*argv), sch, seen)
    assert not set(sch) - seen, f"documented but never seen in the output: {sorted(set(sch) - seen)}"


def test_flops_json_matches_the_documented_schema(free_file):
    sch, seen = schema("flops"), set()
    for argv in (["flops", MINI, "--json"], ["flops", MINI, "--json", "--convention", "full"],
                 ["flops", MINI, "--json", "--symbolic", "--convention", "macs"],
                 ["flops", free_file, "--json"], ["flops", free_file, "--json", "--set", "L=8"]):
        validate(run(*argv), sch, seen)
    short = run("flops", MINI, "--json", "--no-layers")
    assert "layers" not in short
    validate(short, sch, seen, optional={"layers"})
    assert not set(sch) - seen, f"documented but never seen in the output: {sorted(set(sch) - seen)}"


def test_plan_json_matches_the_documented_schema(free_file):
    sch, seen = schema("plan"), set()
    for argv in (["plan", MINI, "--json"], ["plan", MINI, "--json", "--device", "a100", "--dtype", "bf16"],
                 ["plan", free_file, "--json"], ["plan", free_file, "--json", "--set", "L=8"]):
        validate(run(*argv), sch, seen)
    assert not set(sch) - seen, f"documented but never seen in the output: {sorted(set(sch) - seen)}"
    doc, flops = run("plan", MINI, "--json"), run("flops", MINI, "--json", "--no-layers")
    assert doc["eager_bytes"] == flops["bytes_read"] + flops["bytes_written"]
    assert doc["saved_bytes"] == doc["eager_bytes"] - doc["plan_bytes"] > 0
    assert doc["seconds"] == pytest.approx(sum(g["seconds"] for g in doc["groups"]))


def test_memory_json_matches_the_documented_schema(free_file):
    sch, seen = schema("memory"), set()
    for argv in (["memory", MINI, "--json"], ["memory", MINI, "--json", "--checkpoint", "layer1", "--batch", "2"],
                 ["memory", MINI, "--json", "--symbolic", "--dtype", "bf16", "--optimizer", "momentum"],
                 ["memory", free_file, "--json"], ["memory", free_file, "--json", "--set", "L=8"]):
        validate(run(*argv), sch, seen)
    short = run("memory", MINI, "--json", "--no-layers")
    assert "ops" not in short
    validate(short, sch, seen, optional={"ops"})
    assert not set(sch) - seen, f"documented but never seen in the output: {sorted(set(sch) - seen)}"
    free = run("memory", free_file, "--json")
    assert free["saved_bytes"] is None and "L" in free["saved_bytes_expr"]


def test_check_json_is_a_graph_in_topological_order():
    doc = run("check", MINI, "--json")
    nodes = doc["nodes"]
    assert [n["id"] for n in nodes] == list(range(len(nodes)))
    assert all(i < n["id"] for n in nodes for i in n["inputs"])
    assert len({n["name"] for n in nodes}) == len(nodes)
    inputs = [n for n in nodes if n["op"] == "input"]
    assert [n["type"] for n in inputs] == [i["type"] for i in doc["inputs"]]
    for n in nodes:  # the axes spell out the type string
        spelled = ", ".join(f"{a['name']}={a['size']}" for a in n["axes"])
        assert n["type"] == f"[{spelled}]"
    assert nodes[-1]["type"] == doc["outputs"][0] == "[batch=1, chan=1000]"


def test_flops_json_totals_are_the_sums_of_the_layers():
    for convention in ("torch", "macs", "full"):
        doc = run("flops", MINI, "--json", "--convention", convention)
        layers = doc["layers"]
        for field in ("params", "buffers", "flops", "bytes_read", "bytes_written"):
            assert doc[field] == sum(row[field] for row in layers), (convention, field)
        kinds = doc["flops_by_kind"]
        for kind, value in kinds.items():
            assert value == sum(row["flops_by_kind"].get(kind, 0) for row in layers)
        counted = {"torch": ("conv", "linear", "matmul"), "macs": ("conv", "linear", "matmul", "attention"),
                   "full": tuple(kinds)}[convention]
        assert doc["flops"] == sum(v for k, v in kinds.items() if k in counted)


def test_expressions_evaluate_to_the_figures(free_file):
    sym = run("flops", MINI, "--json", "--symbolic")
    conc = run("flops", MINI, "--json")
    values = {sympy.Symbol(k, integer=True, positive=True): v for k, v in sym["sizes"].items()}
    assert sympy.sympify(sym["flops_expr"], locals={str(s): s for s in values}).subs(values) == conc["flops"]
    assert sympy.sympify(sym["params_expr"]) == conc["params"]
    for kind, text in sym["flops_by_kind_expr"].items():
        expr = sympy.sympify(text, locals={str(s): s for s in values})
        assert expr.subs(values) == conc["flops_by_kind"][kind], kind
    free = run("flops", free_file, "--json")
    assert free["sizes"] == {"batch": 1, "L": None} and free["flops"] is None
    length = sympy.Symbol("L", integer=True, positive=True)
    for n in (8, 9, 64):
        at_n = run("flops", free_file, "--json", "--set", f"L={n}")
        assert sympy.sympify(free["flops_expr"], locals={"L": length}).subs(length, n) == at_n["flops"]
        assert at_n["flops"] == 2 * 64 * 256 * n  # one linear 64 -> 256 over n tokens
    assert [c["kind"] for c in free["constraints"]] == ["positive"]
    assert free["constraints"][0]["text"] == "L >= 2"


def test_flops_json_agrees_with_torch():
    """The figures of mini_resnet.arch are those of the same network written with torch.nn."""
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(4 * width)
            self.downsample = None
            if cin != 4 * width:
                self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * width, 1, bias=False),
                                                nn.BatchNorm2d(4 * width))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.layer1 = nn.Sequential(*[Bottleneck(64 if i == 0 else 256, 64) for i in range(3)])
            self.fc = nn.Linear(256, 1000)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
            return self.fc(self.layer1(x).mean((2, 3)))

    model = Net().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, 3, 224, 224))
    doc = run("flops", MINI, "--json")
    assert doc["params"] == sum(p.numel() for p in model.parameters())
    assert doc["buffers"] == sum(b.numel() for b in model.buffers())
    assert doc["flops"] == counter.get_total_flops()
    assert doc["outputs"] == [f"[batch={out.shape[0]}, chan={out.shape[1]}]"]
    check = run("check", MINI, "--json")
    keys = {n["path"] for n in check["nodes"] if n["path"]}
    torch_keys = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    assert keys == torch_keys
