"""Dtypes and buffers in the IR: byte counts follow dtypes, buffers reach the state_dict as PyTorch's do."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import archc
from archc.diagnostics import ArchError
from archc.ir.printer import print_graph
from archc.shapes.types import DTYPES

from conftest import EXAMPLES

torch = pytest.importorskip("torch")

BUFFERS = """
block B() {
  in x: [n = 2, c = 4]
  buffer index: i64[c = 4] = 3, persistent = false
  buffer scale: [c = 4] = 1.5
  buffer mask: bool[c = 4]
  param w: f16[c = 4] = 0.5
  fc = linear(x, c -> 4)
  y = batchnorm(fc)
  out y
}
"""


def _flops(path: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "archc.cli", "flops", path, "--json", "--no-layers", *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_every_dtype_has_its_torch_twin() -> None:
    for d in DTYPES.values():
        t = eval(d.torch, {"torch": torch})  # noqa: S307 - our own table
        assert t.itemsize == d.bytes and t.is_floating_point == (d.kind == "float"), d
        assert t.is_complex == (d.kind == "complex"), d


def test_bf16_halves_every_float_byte_and_keeps_integer_buffers() -> None:
    path = str(EXAMPLES / "resnet50.arch")
    f32, bf16 = _flops(path), _flops(path, "--dtype", "bf16")
    assert (f32["dtype"], bf16["dtype"]) == ("f32", "bf16")
    assert bf16["params"] == f32["params"] and bf16["flops"] == f32["flops"]
    for key in ("param_bytes", "activation_bytes", "bytes_written"):
        assert bf16[key] * 2 == f32[key], key
    counters = 53 * 8  # one i64 num_batches_tracked per batchnorm, as in PyTorch: not cast
    assert f32["buffer_bytes"] == (f32["buffers"] - 53) * 4 + counters
    assert bf16["buffer_bytes"] == (f32["buffers"] - 53) * 2 + counters


def test_a_files_dtype_is_its_default_and_the_flag_wins(tmp_path) -> None:
    p = tmp_path / "m.arch"
    p.write_text("dtype f16\nblock B() {\n  in x: [n = 2, c = 8]\n  fc = linear(x, c -> 4)\n  out fc\n}\n")
    doc = _flops(str(p))
    assert doc["dtype"] == "f16" and doc["param_bytes"] == (8 * 4 + 4) * 2
    assert _flops(str(p), "--dtype", "f32")["param_bytes"] == (8 * 4 + 4) * 4
    g = archc.load(str(p)).check().graph
    assert str(g.node(1).type) == "f16[n=2, c=4]"


@pytest.mark.parametrize("text, message", [
    ("dtype i64\nblock B() { in x: [n = 2]\n out x }", "a file's dtype is a floating-point one"),
    ("dtype bf61\nblock B() { in x: [n = 2]\n out x }", "did you mean 'bf16'"),
    ("block B() { in x: c65[n = 2]\n out x }", "unknown dtype 'c65'"),
    ("block B() { in x: [n = 2]\n param p: i64[n = 2]\n out x }", "declare integer or boolean state with `buffer"),
    ("block B() { in x: [n = 2]\n buffer b: [n = 2] = 1, keep = true\n out x }", "a buffer has one option"),
    ("block B() { in x: [n = 2]\n buffer b: [n = 2], persistent = 3\n out x }", "persistent is true or false"),
])
def test_bad_dtypes_and_buffers_are_located(text: str, message: str) -> None:
    with pytest.raises(ArchError) as err:
        archc.loads(text).check()
    d = err.value.diagnostics[0]
    assert message in d.message and d.span.line >= 1, d


def test_complex_tensors_type_check() -> None:
    g = archc.loads("block B() { in x: c64[n = 2, c = 4]\n out x * x }").check().graph
    assert str(g.node(g.outputs[0]).type) == "c64[n=2, c=4]"


def test_buffers_reach_the_state_dict_as_pytorch_registers_them() -> None:
    m = archc.loads(BUFFERS)
    g = m.check().graph
    module = m.torch()()
    sd = module.state_dict()
    assert list(sd) == list(g.state_dict())  # 'index' is not persistent: not in either
    assert "index" not in sd and dict(module.named_buffers())["index"].dtype == torch.int64
    assert torch.equal(module.index, torch.full((4,), 3)) and module.mask.dtype == torch.bool
    assert sd["scale"].dtype == torch.float32 and sd["w"].dtype == torch.float16
    assert sd["y.num_batches_tracked"].dtype == torch.int64
    ref = torch.nn.BatchNorm1d(4).state_dict()
    assert {k: v.dtype for k, v in ref.items()} == {k[2:]: v.dtype for k, v in sd.items() if k.startswith("y.")}
    for key, (shape, is_buffer) in g.state_dict().items():
        assert tuple(sd[key].shape) == shape and (key in dict(module.named_buffers())) == is_buffer
    module.load_state_dict(sd, strict=True)
    report = m.flops()
    assert report.buffers == 4 + 4 + 4 + 4 + 4 + 1 and report.params == 4 + 4 * 4 + 4 + 4 + 4


def test_the_ir_printer_shows_buffers_and_dtypes() -> None:
    text = print_graph(archc.loads(BUFFERS).check().graph)
    assert 'buffer() {name="index", init=3, persistent=false} : i64[c=4]' in text
    assert "param() {name=\"w\", init=0.5} : f16[c=4]" in text
    assert "buffers{running_mean: [4], running_var: [4], num_batches_tracked: i64[]}" in text
