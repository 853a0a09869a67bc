"""Reports name a learned tensor or a buffer by its own state_dict key (`b0.layer_scale_1`), not by
the path of the block that owns it (`b0`, then `b0#1` for a second one), as they did before
(issue 11); the JSON's `path` stays the owning block's."""

from __future__ import annotations

import json

import archc
from archc.cli import main

SRC = """size batch = 1
block Block(dim) {
  in x: [batch, chan = dim]
  param layer_scale_1: [chan = dim] = 0.00001
  param layer_scale_2: [chan = dim] = 0.00001
  buffer index: i64[chan = dim]
  fc = linear(x, chan -> dim)
  out x + layer_scale_1 * fc * layer_scale_2
}
entry block Net() {
  in x: [batch, chan = 8]
  param class_token: [chan = 8]
  b0 = Block(x + class_token, 8)
  out b0
}
"""


def test_state_rows_are_named_by_their_keys(tmp_path, capsys) -> None:
    m = archc.loads(SRC)
    names = [r.name for r in m.flops().rows if r.op in ("param", "buffer")]
    assert names == ["class_token", "b0.layer_scale_1", "b0.layer_scale_2", "b0.index"]
    state = set(m.check().graph.state_dict())
    assert {"class_token", "b0.layer_scale_1", "b0.layer_scale_2", "b0.index"} <= state
    src = tmp_path / "net.arch"
    src.write_text(SRC)
    assert main(["flops", str(src), "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out)["layers"] if r["op"] in ("param", "buffer")]
    assert [(r["name"], r["path"]) for r in rows] == [("class_token", None), ("b0.layer_scale_1", "b0"),
                                                      ("b0.layer_scale_2", "b0"), ("b0.index", "b0")]
    assert main(["check", str(src)]) == 0
    table = capsys.readouterr().out
    assert "b0.layer_scale_2  param" in table and "b0#1" not in table
