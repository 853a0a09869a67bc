"""`index` and `gather` against torch: types, generated code, symbolic sizes, costs, what training keeps,
the Triton target, and located errors."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: kernels run on the CPU

import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archc  # noqa: E402
from archc.diagnostics import ArchError  # noqa: E402

torch = pytest.importorskip("torch")
from test_memory import measure  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

AXES = ["n", "r", "c"]
DTYPES = {"i64": torch.int64, "i32": torch.int32}


def _decl(names: list[str], sizes: list[int]) -> str:
    return ", ".join(f"{a} = {s}" for a, s in zip(names, sizes))


def _out_type(m: archc.Model, **sets: int) -> str:
    g = m.check(**sets).graph
    return str(g.node(g.outputs[0]).type)


def _run(m: archc.Model, *inputs: torch.Tensor) -> torch.Tensor:
    with FlopCounterMode(display=False) as counter:
        y = m.torch()()(*inputs)
    assert counter.get_total_flops() == m.flops().flops == m.flops(convention="full").flops == 0
    return y


# ---- index ---------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=3, max_size=3), over=st.sampled_from(AXES),
       ids_sizes=st.lists(st.integers(1, 4), min_size=0, max_size=3), dtype=st.sampled_from(sorted(DTYPES)))
def test_index_equals_index_select(sizes: list[int], over: str, ids_sizes: list[int], dtype: str) -> None:
    ids_axes = ["p", "q", "s"][:len(ids_sizes)]
    m = archc.loads(f"block B() {{\n  in x: [{_decl(AXES, sizes)}]\n  in ids: {dtype}[{_decl(ids_axes, ids_sizes)}]\n"
                    f"  out index(x, ids, over = {over})\n}}\n")
    d = AXES.index(over)
    gen = torch.Generator().manual_seed(sum(sizes))
    x = torch.randn(*sizes, generator=gen)
    ids = torch.randint(0, sizes[d], ids_sizes, dtype=DTYPES[dtype], generator=gen)
    want = x.index_select(d, ids.reshape(-1).long()).unflatten(d, ids.shape) if ids_sizes else x.select(d, int(ids))
    got = _run(m, x, ids)
    assert torch.equal(got, want)
    g = m.check().graph
    assert g.node(g.outputs[0]).type.names == tuple(AXES[:d] + ids_axes + AXES[d + 1:])
    assert list(got.shape) == list(want.shape)


def test_swin_style_lookup_code_and_type() -> None:
    m = archc.loads("block B() {\n  in table: [r = 169, head = 3]\n  in idx: i64[tok = 49, key = 49]\n"
                    "  out index(table, idx, over = r)\n}\n")
    assert _out_type(m) == "[tok=49, key=49, head=3]"
    assert "return table[idx]" in m.torch_source()
    m = archc.loads("block B() {\n  in x: [n = 2, r = 169, head = 3]\n  in idx: i64[tok = 49, key = 49]\n"
                    "  out index(x, idx, over = r)\n}\n")
    assert "return x[:, idx]" in m.torch_source()
    x, idx = torch.randn(2, 169, 3), torch.randint(0, 169, (49, 49))
    assert torch.equal(_run(m, x, idx), x[:, idx])


def test_index_with_the_ids_named_like_the_axis_they_replace() -> None:
    m = archc.loads("block B() {\n  in x: [r = 6, c = 2]\n  in ids: i64[r = 3]\n  out index(x, ids, over = r)\n}\n")
    assert _out_type(m) == "[r=3, c=2]"
    x, ids = torch.randn(6, 2), torch.tensor([5, 0, 5])
    assert torch.equal(_run(m, x, ids), x[ids])


def test_index_with_free_sizes() -> None:
    m = archc.loads("size R, T\nblock B() {\n  in x: [n = 2, r = R, c = 3]\n  in ids: i64[tok = T, key = 2 * T]\n"
                    "  out index(x, ids, over = r)\n}\n")
    g = m.check(symbolic=True).graph
    assert str(g.node(g.outputs[0]).type) == "[n=2, tok=T, key=2·T, c=3]"
    net = m.torch()()
    for r, t in ((5, 1), (9, 3)):  # one module for every R and T
        x, ids = torch.randn(2, r, 3), torch.randint(0, r, (t, 2 * t))
        assert torch.equal(net(x, ids), x[:, ids])


def test_index_reads_and_writes_like_other_movement() -> None:
    m = archc.loads("block B() {\n  in x: [r = 5, head = 2]\n  in ids: i64[tok = 3, key = 3]\n"
                    "  out index(x, ids, over = r)\n}\n")
    row = m.flops().rows[-1]
    assert (row.flops, row.read, row.written) == (0, 5 * 2 * 4 + 9 * 8, 9 * 2 * 4)


# ---- gather --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=3, max_size=3), over=st.sampled_from(AXES),
       k=st.integers(1, 5), order=st.permutations(AXES), keep=st.lists(st.booleans(), min_size=3, max_size=3),
       dtype=st.sampled_from(sorted(DTYPES)))
def test_gather_equals_torch_gather(sizes: list[int], over: str, k: int, order: list[str], keep: list[bool],
                                    dtype: str) -> None:
    """ids with any of x's axes, in any order: missing ones broadcast, a missing `over` is dropped."""
    ids_axes = [a for a, kept in zip(order, keep) if kept]
    ids_sizes = [k if a == over else sizes[AXES.index(a)] for a in ids_axes]
    m = archc.loads(f"block B() {{\n  in x: [{_decl(AXES, sizes)}]\n  in ids: {dtype}[{_decl(ids_axes, ids_sizes)}]\n"
                    f"  out gather(x, ids, over = {over})\n}}\n")
    d = AXES.index(over)
    gen = torch.Generator().manual_seed(sum(sizes) + k)
    x = torch.randn(*sizes, generator=gen)
    ids = torch.randint(0, sizes[d], ids_sizes, dtype=DTYPES[dtype], generator=gen)
    # the oracle: ids in x's order, with every axis, then torch.gather
    full = ids.permute([ids_axes.index(a) for a in AXES if a in ids_axes])
    for i, a in enumerate(AXES):
        if a not in ids_axes:
            full = full.unsqueeze(i)
    want = x.gather(d, full.long().expand([-1 if a in ids_axes or a == over else s for a, s in zip(AXES, sizes)]))
    if over not in ids_axes:
        want = want.squeeze(d)
    got = _run(m, x, ids)
    assert torch.equal(got, want)
    assert _out_type(m) == "[" + ", ".join(f"{a}={k if a == over else s}" for a, s in zip(AXES, sizes)
                                           if a != over or over in ids_axes) + "]"


def test_gather_code_reads_like_torch() -> None:
    m = archc.loads("block B() {\n  in x: [n = 2, c = 4]\n  in ids: i64[n = 2, c = 3]\n"
                    "  out gather(x, ids, over = c)\n}\n")
    assert "return x.gather(1, ids)" in m.torch_source()
    m = archc.loads("block B() {\n  in logits: [n = 2, class = 10]\n  in labels: i64[n = 2]\n"
                    "  out gather(logits, labels, over = class)\n}\n")
    assert _out_type(m) == "[n=2]"
    assert "return logits.gather(1, labels[:, None]).squeeze(1)" in m.torch_source()
    logits, labels = torch.randn(2, 10), torch.tensor([3, 9])
    assert torch.equal(_run(m, logits, labels), logits[torch.arange(2), labels])


def test_gather_with_free_sizes() -> None:
    m = archc.loads("size N, K\nblock B() {\n  in x: [n = N, c = 6, h = 3]\n  in ids: i64[c = K, n = N]\n"
                    "  out gather(x, ids, over = c)\n}\n")
    g = m.check(symbolic=True).graph
    assert str(g.node(g.outputs[0]).type) == "[n=N, c=K, h=3]"
    assert "ids.permute(1, 0)[:, :, None].expand(-1, -1, 3)" in m.torch_source()
    net = m.torch()()
    for n, k in ((1, 2), (3, 7)):
        x, ids = torch.randn(n, 6, 3), torch.randint(0, 6, (k, n))
        assert torch.equal(net(x, ids), x.gather(1, ids.t()[:, :, None].expand(-1, -1, 3)))


def test_gather_states_equal_sizes_of_free_axes() -> None:
    """ids' other axes have x's sizes: with free sizes that is a constraint, checked when sizes are set."""
    m = archc.loads("size N, M\nblock B() {\n  in x: [n = N, c = 6]\n  in ids: i64[n = M, c = 2]\n"
                    "  out gather(x, ids, over = c)\n}\n")
    assert _out_type(m, N=3, M=3) == "[n=3, c=2]"
    with pytest.raises(ArchError) as e:
        m.check(N=3, M=4)
    assert "axis 'n' of x and of the ids" in str(e.value)


# ---- what training keeps, the Triton target ------------------------------------------------------------


@pytest.mark.parametrize("call, ids", [
    ("index(h, ids, over = r)", "i64[tok = 3, key = 4]"),
    ("index(h, ids, over = c)", "i32[k = 5]"),
    ("gather(h, ids, over = r)", "i32[n = 2, r = 5]"),
    ("gather(h, ids, over = r)", "i64[n = 2, c = 8]"),
    ("gather(h, ids, over = c)", "i32[c = 3, r = 8, n = 2]"),
])
def test_saved_tensors_are_what_autograd_keeps(call: str, ids: str) -> None:
    """index keeps the ids; gather keeps its input and the (expanded, permuted: views of) ids. The ids are
    made at their declared dtype here (test_memory's inputs are i64)."""
    m = archc.loads(f"block L() {{\n  in x: [n = 2, r = 8, c = 8]\n  in ids: {ids}\n  h = linear(x, c -> 8)\n"
                    f"  out {call}\n}}\n")
    graph = m.check().graph
    t = graph.node(graph.inputs[1]).type
    x = torch.randn(2, 8, 8)
    idx = torch.randint(0, 8, [int(a.size) for a in t.axes], dtype=DTYPES[t.dtype])
    torch.manual_seed(0)
    net = m.torch()().train()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: dict[int, int] = {}
    kept = []

    def pack(v: torch.Tensor) -> torch.Tensor:
        kept.append(v)
        if v.untyped_storage().data_ptr() not in params:
            seen[v.untyped_storage().data_ptr()] = v.untyped_storage().nbytes()
        return v

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda v: v):
        net(x, idx).sum().backward()
    assert m.memory().saved == sum(seen.values())
    if t.dtype == "i64":  # the harness of tests/test_memory.py agrees
        assert measure(m, {})[0] == m.memory().saved


@pytest.mark.parametrize("ids, lookup", [
    ("i64[tok = 4, key = 5]", "index(table, ids, over = r)"),
    ("i32[r = 2]", "gather(table, ids, over = r)"),
])
def test_triton_target_builds_and_runs_lookups(ids: str, lookup: str) -> None:
    """The Triton target fuses what it can and calls torch for index and gather (no kernel of their own)."""
    pytest.importorskip("triton")
    from archc.codegen.torch.generate import load_class
    m = archc.loads(f"block B() {{\n  in ids: {ids}\n  param table: [r = 7, head = 8]\n"
                    f"  looked = {lookup}\n  out relu(looked) * 2.0 + 1.5 * looked\n}}\n",
                    "lookup.arch")
    tm = m.triton_module()
    assert tm.kernels > 0 and ("self.table[ids]" in tm.text or "self.table.gather(0, ids" in tm.text)
    eager, fused = m.torch()().eval(), load_class(tm.generated, f"archc_triton_{lookup[:5]}")().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in eager.parameters():
            p.copy_(torch.randn(p.shape))
    fused.load_state_dict(eager.state_dict(), strict=True)
    graph = m.check().graph
    t = graph.node(graph.inputs[0]).type
    idx = torch.randint(0, 7, [int(a.size) for a in t.axes], dtype=DTYPES[t.dtype])
    with torch.no_grad():
        want, got = eager(idx), fused(idx)
    assert got.shape == want.shape
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


# ---- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, ids, message, at", [
    ("index(x, ids, over = r)", "[tok = 4]", "the ids of index are an i32 or i64 tensor of positions along 'r', "
                                             "not f32", "index"),
    ("index(x, ids, over = r)", "bool[tok = 4]", "not bool", "index"),
    ("index(x, ids, over = r)", "u8[tok = 4]", "not u8", "index"),
    ("gather(x, ids, over = r)", "f64[n = 2, r = 4]", "the ids of gather are an i32 or i64 tensor", "gather"),
    ("index(x, ids, over = q)", "i64[tok = 4]", "has no axis 'q'", "over"),
    ("gather(x, ids, over = tok)", "i64[n = 2, r = 4]", "has no axis 'tok'", "over"),
    ("index(x, ids, over = r)", "i64[tok = 4, c = 3]", "axis 'c' of the ids i64[tok=4, c=3] is also an axis of",
     "index"),
    ("gather(x, ids, over = r)", "i64[n = 2, tok = 4]", "axis 'tok' of the ids i64[n=2, tok=4] is not an axis of",
     "gather"),
    ("gather(x, ids, over = r)", "i64[n = 3, r = 4]", "axis 'n' of x and of the ids: 2 vs 3", "gather"),
    ("index(x, over = r)", "i64[tok = 4]", "index takes 2 tensor input(s), got 1", "index"),
])
def test_bad_lookups_are_located(call: str, ids: str, message: str, at: str) -> None:
    """Line 4; `  y = ` puts the call at column 7: an error about `over` points at it, the others at the call."""
    with pytest.raises(ArchError) as err:
        archc.loads(f"block B() {{\n  in x: [n = 2, r = 5, c = 3]\n  in ids: {ids}\n  y = {call}\n  out y\n}}\n"
                    ).check()
    d = err.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (4, 7 + call.index(at)), (d.message, d.span)
