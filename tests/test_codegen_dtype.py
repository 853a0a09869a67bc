"""`archc build` honours the model's floating-point dtype (a file's `dtype bf16`, or `--dtype`), as
`archc check` types it: the entry's floating-point parameters and buffers are in that dtype (it casts
them at the end of its constructor, as `model.to(torch.bfloat16)`), integer, boolean and complex ones
keep theirs, floating-point constants made in forward take it, and a forward on inputs of that dtype
gives outputs of the dtype archc check says. Build ignored a file's dtype before (issue 11)."""

from __future__ import annotations

import json

import pytest

import archc
from archc.cli import main
from archc.shapes.types import DTYPES

torch = pytest.importorskip("torch")

SRC = """dtype bf16
size batch = 2

block Mixer(dim) {
  in x: [batch, tok, chan = dim]
  param gamma: [chan = dim] = 0.5
  fc = linear(x, chan -> dim)
  out x + gamma * fc
}

entry block Net(ws = 3) {
  in x: [batch, tok = ws * ws, chan = 8]
  in ids: i64[batch, tok = ws * ws]
  buffer index: i64[tok = ws * ws] = 1
  buffer mask: bool[tok = ws * ws], persistent = false
  buffer table: [tok = ws * ws] = 0.25
  param z: c64[chan = 8]
  param h: f16[chan = 8] = 1.0
  emb = embedding(ids, num = 10, dim = 8)
  m = Mixer(x + emb, 8)
  bn = batchnorm(m, axis = chan)
  n = layernorm(bn)
  out n * ones(chan = 8) + rename(table, tok -> tok), index
}
"""


def _torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, DTYPES[name].torch.split(".")[1])


def test_the_files_dtype_is_the_modules() -> None:
    m = archc.loads(SRC, name="net.arch")
    g = m.check().graph
    assert g.dtype == "bf16"
    module = m.torch()().eval()
    sd = module.state_dict()
    expected = {n.path + "." + p.name if n.path else p.name: p.dtype for n in g for p in n.params if p.persistent}
    assert {k: v.dtype for k, v in sd.items()} == {k: _torch_dtype(v) for k, v in expected.items()}
    assert sd["index"].dtype == torch.int64 and sd["z"].dtype == torch.complex64
    assert sd["h"].dtype == sd["table"].dtype == sd["m.fc.weight"].dtype == torch.bfloat16
    assert sd["bn.num_batches_tracked"].dtype == torch.int64 and module.mask.dtype == torch.bool
    assert torch.equal(sd["index"], torch.ones(9, dtype=torch.int64))
    x, ids = torch.randn(2, 9, 8, dtype=torch.bfloat16), torch.randint(0, 10, (2, 9))
    y, index = module(x, ids)
    out = g.node(g.outputs[0]).type
    assert y.dtype == _torch_dtype(out.dtype) == torch.bfloat16 and index.dtype == torch.int64
    assert tuple(y.shape) == (2, 9, 8)
    src = m.torch_source()
    assert "cast_floats(self, torch.bfloat16)" in src  # complex state: not module.to, which drops imaginary parts
    assert "torch.ones(8, dtype=torch.bfloat16" in src


def test_without_complex_state_the_entry_calls_to() -> None:
    m = archc.loads("dtype f16\nblock B() {\n  in x: [n = 2, c = 8]\n  fc = linear(x, c -> 4)\n  out fc\n}\n")
    assert "self.to(torch.float16)" in m.torch_source() and "cast_floats" not in m.torch_source()
    assert all(v.dtype == torch.float16 for v in m.torch()().state_dict().values())
    # f32, the default: no cast at all; `dtype=` overrides the file's
    f32 = m.torch_source(dtype="f32")
    assert "self.to(" not in f32
    assert all(v.dtype == torch.float32 for v in m.torch(dtype="f32")().state_dict().values())


def test_build_takes_dtype(tmp_path, capsys) -> None:
    src = tmp_path / "m.arch"
    src.write_text("block B() {\n  in x: [n = 2, c = 8]\n  fc = linear(x, c -> 4)\n  out fc\n}\n")
    assert main(["build", str(src), "-o", str(tmp_path / "out"), "--dtype", "bf16", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["inputs"][0]["dtype"] == "bf16" and doc["inputs"][0]["type"] == "bf16[n=2, c=8]"
    text = (tmp_path / "out" / "m.py").read_text()
    assert "self.to(torch.bfloat16)  # the model's dtype, bf16" in text


def test_explicit_dtypes_in_an_f32_model() -> None:
    m = archc.loads("block B() {\n  in x: [n = 2, c = 8]\n  param h: f16[c = 8]\n  param z: c64[c = 8]\n"
                    "  buffer i: i32[c = 8] = 7\n  out x\n}\n")
    sd = m.torch()().state_dict()
    assert (sd["h"].dtype, sd["z"].dtype, sd["i"].dtype) == (torch.float16, torch.complex64, torch.int32)
    assert "self.to(" not in m.torch_source()
