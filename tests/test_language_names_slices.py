"""Language walls of issue 11, as features: `x[h = a:b:c]` slicing syntax (against torch indexing),
`none` for optional arguments, `... as "layer{i}"` layer names outside a `seq` (state_dict keys), and
calls of blocks without layers that need no name (inlined in the caller's forward)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")


def _python_slice(n: int, start: int | None, stop: int | None, step: int | None) -> str:
    return "".join(("" if start is None else str(start), ":", "" if stop is None else str(stop),
                    "" if step is None else f":{step}"))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(h=st.integers(2, 9), w=st.integers(2, 9), data=st.data())
def test_slicing_syntax_equals_torch_indexing(h: int, w: int, data: st.DataObject) -> None:
    """`x[h = a:b:c, w = i]` gives torch's `x[:, a:b:c, i]`, shape and values, in the generated module."""
    start = data.draw(st.one_of(st.none(), st.integers(-h, h - 1)))
    lo = 0 if start is None else (start + h if start < 0 else start)
    stop = data.draw(st.one_of(st.none(), st.integers(lo + 1, h)))
    step = data.draw(st.one_of(st.none(), st.integers(1, 3)))
    pos = data.draw(st.integers(-w, w - 1))
    text = _python_slice(h, start, stop, step)
    m = archc.loads(f"block B() {{\n  in x: [c = 3, h = {h}, w = {w}]\n  out x[h = {text}, w = {pos}]\n}}\n")
    x = torch.randn(3, h, w)
    want = x[:, slice(start, stop, step), pos]
    g = m.check().graph
    out = g.node(g.outputs[0]).type
    assert [a.name for a in out.axes] == ["c", "h"] and [a.size for a in out.axes] == list(want.shape)
    assert torch.equal(m.torch()()(x), want)
    assert m.flops(convention="full").flops == 0


def test_slicing_free_sizes_stays_symbolic_and_labels_the_row() -> None:
    m = archc.loads("size H\nblock B() {\n  in x: [c = 2, h = H]\n  y = x[h = 1:H // 2]\n  out y\n}\n")
    g = m.check(symbolic=True).graph
    assert str(g.node(g.outputs[0]).type) == "[c=2, h=⌊H/2⌋ - 1]"
    assert g.node(g.outputs[0]).label == "y"  # the report's row is the variable
    x = torch.arange(20.0).reshape(2, 10)
    assert torch.equal(m.torch()()(x), x[:, 1:5])


def test_none_is_an_optional_argument_left_out() -> None:
    """`stop = none` is slice's default; a block parameter defaulting to `none` is tested with `== none`."""
    m = archc.loads("block B(stop = none) {\n  in x: [c = 2, h = 10]\n"
                    "  y = slice(x, over = h, start = 2, stop = stop)\n"
                    "  out if stop == none then y else relu(y)\n}\n")
    x = torch.randn(2, 10)
    assert torch.equal(m.torch()()(x), x[:, 2:])
    bounded = m.check(stop=6).graph
    assert str(bounded.node(bounded.outputs[0]).type) == "[c=2, h=4]"
    assert "relu" in [n.op.value for n in bounded]


def test_none_where_a_value_is_needed_is_located() -> None:
    with pytest.raises(ArchError) as e:
        archc.loads("block B() {\n  in x: [c = 2]\n  y = linear(x, c -> 4, bias = none)\n  out y\n}\n").check()
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (3, 32) and "got none" in d.message


ASSIGNED = """\
size batch = 2
block Layer(d) {
  in x: [batch, chan]
  fc = linear(x, chan -> d)
  out relu(fc)
}
block Net(depth = 3) {
  in x: [batch, chan = 8]
  for i in 1..depth + 1 {
    x = Layer(x, 8) as "layer{i}"
  }
  head = linear(x, chan -> 4) as "pre-logits"
  out head
}
"""


class Reference(torch.nn.Module):
    """The same network written in torch: torchvision's layer1..layer3 keys and a '-' key."""

    def __init__(self) -> None:
        super().__init__()
        for i in range(1, 4):
            layer = torch.nn.Module()
            layer.fc = torch.nn.Linear(8, 8)
            self.add_module(f"layer{i}", layer)
        self.add_module("pre-logits", torch.nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 4):
            x = torch.relu(getattr(self, f"layer{i}").fc(x))
        return getattr(self, "pre-logits")(x)


def test_as_names_layers_like_a_checkpoint() -> None:
    """`x = Layer(x, 8) as "layer{i}"` in a loop gives layer1..layer3; `as "pre-logits"` a key with '-'."""
    m = archc.loads(ASSIGNED)
    ref = Reference()
    keys = list(m.check().graph.state_dict())
    assert keys == list(ref.state_dict())
    net = m.torch()()
    net.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 8)
    assert torch.equal(net(x), ref(x))
    assert 'self.add_module("pre-logits", nn.Linear(8, 4))' in m.torch_source()


def test_as_names_list_elements_and_stateless_values() -> None:
    m = archc.loads("block B() {\n  in x: [n = 2, c = 4]\n  for i in 0..2 {\n"
                    "    fc[i] = linear(x, c -> 4) as \"proj_{i}\"\n  }\n"
                    "  y = relu(fc[1]) as \"act\"\n  out y + fc[0]\n}\n")
    g = m.check().graph
    assert list(g.state_dict()) == ["proj_0.weight", "proj_0.bias", "proj_1.weight", "proj_1.bias"]
    assert "act" in [n.label for n in g]


STATELESS = """\
size batch = 2, H = 8
block Partition(ws) {
  in x: [batch, chan, h, w]
  out rearrange(x, "batch chan (nh s) (nw t) -> win=(batch nh nw) chan s t", s = ws, t = ws)
}
block Merge(ws, n) {
  in x: [win, chan, s, t]
  out rearrange(x, "(batch nh nw) chan s t -> batch chan h=(nh s) w=(nw t)", nh = n, nw = n)
}
block Net() {
  in x: [batch, chan = 4, h = H, w = H]
  fc = conv(x, chan -> 4, k = 1)
  out Merge(relu(Partition(fc, 4)), 4, 2) + x
}
"""


def test_blocks_without_layers_need_no_name() -> None:
    """A block call with no layers nests like an op: its ops are the caller's, and its module is plain."""
    m = archc.loads(STATELESS)
    g = m.check().graph
    assert list(g.state_dict()) == ["fc.weight", "fc.bias"]
    net = m.torch()()
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(net(x), torch.relu(net.fc(x)) + x)
    assert "Partition" not in m.torch_source()  # nothing to construct: the rearranges are inline


def test_a_block_with_layers_still_needs_a_name() -> None:
    text = STATELESS.replace('out rearrange(x, "batch chan (nh s)', 'p = conv(x, chan -> 4, k = 1)\n'
                             '  out rearrange(p, "batch chan (nh s)')
    with pytest.raises(ArchError) as e:
        archc.loads(text).check()
    d = e.value.diagnostics[0]
    assert "needs a name: it has layers ('p')" in d.message and d.span.line == 14


def test_lists_built_by_elements_pass_whole_and_concatenate() -> None:
    """`dims[i] = ...` of numbers is a list like `[...]`; `widths + [2]` concatenates."""
    m = archc.loads("block B(widths = [1, 1]) {\n  in x: [n = 2, c = 4]\n  for i in 0..2 {\n"
                    "    dims[i] = widths[i]\n  }\n  parts = split(x, axis = c, sizes = dims + [2])\n"
                    "  out parts[2]\n}\n")
    g = m.check().graph
    assert str(g.node(g.outputs[0]).type) == "[n=2, c=2]"
    x = torch.randn(2, 4)
    assert torch.equal(m.torch()()(x), x[:, 2:])


def test_a_list_with_gaps_says_which_elements_it_has() -> None:
    with pytest.raises(ArchError) as e:
        archc.loads("block B() {\n  in x: [n = 2, c = 4]\n  dims[0] = 1\n  dims[2] = 3\n"
                    "  parts = split(x, axis = c, sizes = dims)\n  out x\n}\n").check()
    assert "a list with elements [0, 2] assigned" in str(e.value)


PADDED = """\
size batch = 1, H, W
block Net(ws = 4) {
  in x: [batch, chan = 4, h = H, w = W]
  p = pad(x, over = [h, w], pad = [[0, (ws - H % ws) % ws], [0, (ws - W % ws) % ws]])
  win = rearrange(p, "batch chan (nh s) (nw t) -> (batch nh nw) chan s t", s = ws, t = ws)
  y = rearrange(relu(win) * 2.0, "(batch nh nw) chan s t -> batch chan h=(nh s) w=(nw t)",
                nh = (H + ws - 1) // ws, nw = (W + ws - 1) // ws)
  out y[h = 0:H, w = 0:W]
}
"""


def test_padding_to_a_multiple_of_the_window_is_exact_at_every_size() -> None:
    """Swin's pad-if-not-a-multiple without a branch: one generated module, exact at every input size, and
    the padded size reads ws·⌈H/ws⌉ (so the window count cancels: no constraint on H and W)."""
    m = archc.loads(PADDED)
    g = m.check(symbolic=True).graph
    assert str(g.node(g.outputs[0]).type) == "[batch=batch, chan=4, h=H, w=W]"
    assert not any("divisible" in str(c) for c in g.constraints)
    padded = next(n for n in g if n.op.value == "pad")
    assert str(padded.type) == "[batch=batch, chan=4, h=4·⌈H/4⌉, w=4·⌈W/4⌉]"
    net = m.torch()()
    for h, w in ((13, 9), (16, 16), (5, 7)):
        x = torch.randn(1, 4, h, w)
        assert torch.equal(net(x), torch.relu(x) * 2.0)


def test_a_size_as_a_comparison_value_is_read_at_run_time() -> None:
    """`less(x, value = L)`: the size, not a number fixed at build time (a padding mask at any length)."""
    m = archc.loads("size batch = 2, L = 8\nblock Net() {\n  in x: [batch, tok = L]\n"
                    "  m = less(x, value = L)\n  g = greater_equal(x, value = L // 2)\n"
                    "  out where(logical_and(m, g), x, x * 2.0)\n}\n")
    assert "torch.lt(x, L)" in m.torch_source()
    net = m.torch()()
    for length in (8, 12):
        x = torch.arange(2.0 * length).reshape(2, length)
        assert torch.equal(net(x), torch.where((x < length) & (x >= length // 2), x, x * 2))


def test_an_unnamed_block_call_takes_run_time_sizes() -> None:
    """Inline, a layer-less block's parameter may be a size of the input (a module built once could not)."""
    m = archc.loads("size batch = 2, L = 8\nblock Crop(n) {\n  in x: [batch, tok, chan]\n"
                    "  out x[tok = 0:n // 2]\n}\nblock Net() {\n  in x: [batch, tok = L, chan = 4]\n"
                    "  out relu(Crop(x, L))\n}\n")
    net = m.torch()()
    for length in (8, 11):
        x = torch.randn(2, length, 4)
        assert torch.equal(net(x), torch.relu(x[:, :length // 2]))


def test_name_templates_take_strings_and_list_elements() -> None:
    """Inception's Mixed_5b, Mixed_5c, ...: `as "Mixed_{names[i]}"` in a loop, and `{kind}` a string."""
    m = archc.loads("block B(names = [\"5b\", \"5c\", \"6a\"], kind = \"branch\") {\n  in x: [n = 2, c = 4]\n"
                    "  for i in 0..3 {\n    x = linear(x, c -> 4) as \"Mixed_{names[i]}\"\n  }\n"
                    "  y = linear(x, c -> 2) as \"{kind}1x1\"\n  out y\n}\n")
    keys = [k for k in m.check().graph.state_dict() if k.endswith("weight")]
    assert keys == ["Mixed_5b.weight", "Mixed_5c.weight", "Mixed_6a.weight", "branch1x1.weight"]
    net = m.torch()()
    assert list(net.state_dict()) == list(m.check().graph.state_dict())


@pytest.mark.parametrize("template,message", [
    ('"x{names[7]}"', "'{names[7]}' in a layer name must be"),
    ('"x{flag}"', "'{flag}' in a layer name must be"),
    ('"x{bad}"', "layer name 'xa b' must be letters, digits, _ and -"),
    ('"x{names[i + 1]}"', "'{names[i + 1]}' in a layer name: braces hold a variable, or a list's element"),
])
def test_bad_template_values_are_located(template: str, message: str) -> None:
    src = ("block B(names = [\"a\"], flag = true, bad = \"a b\") {\n  in x: [n = 2, c = 4]\n"
           f"  y = linear(x, c -> 2) as {template}\n  out y\n}}\n")
    with pytest.raises(ArchError) as e:
        archc.loads(src).check()
    d = e.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (3, 28), (d.message, d.span)


def test_a_named_block_deciding_on_its_input_channels_tests_them_when_it_runs() -> None:
    """A layer-less block whose `if` reads its input's channel count builds as a module (not only inline),
    and its forward tests the count, named as the block names it, so it takes either branch."""
    m = archc.loads("size batch = 1\nblock Shortcut(cout) {\n  in x: [batch, chan = cin, h, w]\n"
                    "  out if cin == cout then x else relu(x)\n}\nblock Net() {\n"
                    "  in x: [batch, chan = 8, h = 4, w = 4]\n  fc = conv(x, chan -> 8, k = 1)\n"
                    "  sc = Shortcut(x, 8)\n  out fc + sc\n}\n")
    source = m.torch_source()
    assert "def __init__(self, cout: int)" in source and "self.sc = Shortcut(8)" in source
    assert "cin = x.shape[1]\n        if cin == self.cout:" in source
    net = m.torch()()
    x = torch.randn(1, 8, 4, 4)
    assert torch.allclose(net(x), net.fc(x) + x)
    y = torch.randn(1, 5, 4, 4)
    assert torch.equal(net.sc(y), torch.relu(y))


def test_out_as_names_the_last_layer() -> None:
    """`out linear(...) as "head"`: no `head = ...` line before `out head`; the name may be a key with '-'."""
    m = archc.loads("block Head() {\n  in x: [n = 2, c = 4]\n  fc = linear(x, c -> 4)\n"
                    "  out linear(relu(fc), c -> 3) as \"pre-logits\"\n}\n"
                    "block Net() {\n  in x: [n = 2, c = 4]\n  h = Head(x)\n  out linear(h, c -> 2) as \"head\"\n}\n")
    keys = list(m.check().graph.state_dict())
    assert keys == ["h.fc.weight", "h.fc.bias", "h.pre-logits.weight", "h.pre-logits.bias", "head.weight", "head.bias"]
    assert list(m.torch()().state_dict()) == keys
    with pytest.raises(ArchError) as e:
        archc.loads("block B() {\n  in x: [n = 2, c = 4]\n  out x, x as \"two\"\n}\n").check()
    assert "names one layer; this `out` has 2 values" in str(e.value) and e.value.diagnostics[0].span.col == 15


def test_for_over_a_lists_items_equals_the_indexed_loop() -> None:
    """`for d in dims` binds each item in order, in statements and in `seq` steps: the same state_dict,
    parameters and outputs as `for i in 0..len(dims)` with `dims[i]`; a list of each length gets its own
    class (the items are built in)."""
    items = '''block Stage(widths) {
  in x: [b, chan, t]
  out seq(x) {
    for d in widths {
      conv(chan -> d, k = 3, pad = 1)
      relu()
    }
  }
}
entry block Net(dims = [6, 5, 4]) {
  in x: [b = 2, chan = 3, t = 7]
  s1 = Stage(x, [4, 8])
  s2 = Stage(s1, dims)
  y = mean(s2, over = [t])
  for d in dims {
    fc = linear(y, chan -> d) as "fc{d}"
    y = relu(fc)
  }
  out y * len(dims)
}'''
    indexed = items
    for old, new in (("for d in widths {", "for i in 0..len(widths) {"), ("chan -> d, k", "chan -> widths[i], k"),
                     ("for d in dims {", "for i in 0..len(dims) {"), ("chan -> d)", "chan -> dims[i])"),
                     ('"fc{d}"', '"fc{dims[i]}"')):
        indexed = indexed.replace(old, new)
    assert indexed != items and "for d in" not in indexed
    a, b = archc.loads(items, "items.arch"), archc.loads(indexed, "indexed.arch")
    fa, fb = a.flops(), b.flops()
    assert (fa.flops, fa.params) == (fb.flops, fb.params)
    ma, mb = a.torch()().eval(), b.torch()().eval()
    assert [(k, v.shape) for k, v in ma.state_dict().items()] == [(k, v.shape) for k, v in mb.state_dict().items()]
    assert "fc6.weight" in ma.state_dict() and "s2.4.weight" in ma.state_dict()
    mb.load_state_dict(ma.state_dict())
    x = torch.randn(2, 3, 7)
    with torch.no_grad():
        assert torch.equal(ma(x), mb(x)) and ma(x).shape == (2, 4)


def test_len_counts_a_lists_items_and_refuses_the_rest() -> None:
    ok = ("block B(ws = [1, 2, 3]) {\n in x: [n = 2]\n"
          " assert len(ws) == 3 and len([]) == 0 and len(\"ab\") == 2\n out x }")
    archc.loads(ok, "len.arch").check()
    with pytest.raises(ArchError, match="len takes a list, got the number 4"):
        archc.loads(ok.replace("len(ws) == 3", "len(4) == 3"), "len.arch").check()


def test_a_tensor_scaled_by_a_free_size_reads_it_at_run_time() -> None:
    """`x / L` and `x * (H * W)` on free sizes: check decides with the defaults, build reads the sizes
    off the input (it refused them: check accepted what build did not), at any size; the Triton target
    leaves them to torch. `x / 0` is a located error (it was an internal error)."""
    src = ("size L = 16, H = 3, W = 5\nblock B() {\n in x: [b = 2, t = L, c = 4, h = H, w = W]\n"
           " s = sum(x, over = [t])\n m = s / L\n out m * (H * W) + x[t = 0] * L }")
    model = archc.loads(src, "scale.arch")
    model.check()  # at the defaults
    mod, fused = model.torch()().eval(), model.triton()().eval()
    for t, h, w in ((16, 3, 5), (7, 2, 9), (1, 1, 1)):
        x = torch.randn(2, t, 4, h, w)
        want = x.sum(1) / t * (h * w) + x[:, 0] * t
        with torch.inference_mode():
            assert torch.allclose(mod(x), want, rtol=1e-5, atol=1e-5)
            assert torch.allclose(fused(x), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ArchError, match="division by zero"):
        archc.loads("block B() {\n in x: [n = 2]\n out x / 0 }", "zero.arch").check()
    with pytest.raises(ArchError, match="division by zero"):
        archc.loads("block B() {\n in x: [n = 2]\n out x / 0.0 }", "zero.arch").check()


def test_out_may_choose_a_sequence() -> None:
    """`out if deep then seq(x) { ... } else x`: the chosen value is the block's output as if written alone, so
    the sequence's steps are the block's own (keys `0.weight`), with no name needed."""
    src = ("size batch = 1, H = 8\nblock Net(deep = true) {\n  in x: [batch, chan = 4, h = H]\n"
           "  out if deep then seq(x) { conv(chan -> 4, k = 1), relu() } else x\n}\n")
    net = archc.loads(src).torch()()
    assert list(net.state_dict()) == ["0.weight", "0.bias"]
    x = torch.randn(1, 4, 8)
    assert torch.equal(net(x), torch.relu(net[0](x)))
    shallow = archc.loads(src.replace("deep = true", "deep = false")).torch()()
    assert not list(shallow.state_dict()) and torch.equal(shallow(x), x)
