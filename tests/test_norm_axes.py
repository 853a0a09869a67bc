"""Norms over axes torch's modules do not take build, as they check (issue 11): `rmsnorm` over axes that
are not last (RMSNormAt), `groupnorm` of a channel axis after position 1 (GroupNormAt, channels last),
`batchnorm` of a channel axis anywhere, of a tensor of any rank (BatchNormAt). Each is torch's own
module moving the axes where it wants them and back, so the parameters, buffers and state_dict keys
are torch's; the outputs equal a hand-written computation. Norms without state (`affine = false`) are
written in forward with torch's functions, the axes moved likewise (they had no lowering before)."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")


def _build(typ: str, body: str):
    m = archc.loads(f"block T() {{\n  in x: {typ}\n  {body}\n  out y\n}}\n", name="t.arch")
    module = m.torch()()
    sd = module.state_dict()
    # the state_dict is the one archc check lists
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: s for k, (s, _) in m.check().graph.state_dict().items()}
    return m, module, sd


def _rms(x: torch.Tensor, dims: tuple[int, ...], weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
    if weight is None:
        return y
    shape = [1] * x.dim()
    for d, n in zip(dims, weight.shape):
        shape[d] = n
    return y * weight.reshape(shape)


@pytest.mark.parametrize("over,dims", [("[c]", (1,)), ("[c, h]", (1, 2)), ("[t]", (3,))])
@pytest.mark.parametrize("affine", [True, False])
def test_rmsnorm_over_inner_axes(over: str, dims: tuple[int, ...], affine: bool) -> None:
    m, module, sd = _build("[b = 2, c = 6, h = 3, t = 4]",
                           f"y = rmsnorm(x, over = {over}, eps = 0.0001, affine = {str(affine).lower()})")
    if dims != (3,):  # with a weight, a module; without, torch's function in forward
        assert ("RMSNormAt(" if affine else "F.rms_norm(torch.movedim(x, ") in m.torch_source()
    x = torch.randn(2, 6, 3, 4)
    with torch.no_grad():
        sd["y.weight"].uniform_(0.5, 1.5) if affine else None
        ref = _rms(x, dims, sd.get("y.weight"), 1e-4)
        assert torch.allclose(module(x), ref, atol=1e-5)


def test_rmsnorm_at_free_sizes_and_as_a_step() -> None:
    m = archc.loads("size T\nblock B() {\n  in x: [b = 2, c = 8, t = T]\n  out seq(x) {\n"
                    "    rmsnorm(over = [c])\n    relu()\n  }\n}\n", name="b.arch")
    module = m.torch()()
    with torch.no_grad():
        module[0].weight.uniform_(0.5, 1.5)
    for t in (3, 7):
        x = torch.randn(2, 8, t)
        ref = torch.relu(_rms(x, (1,), module[0].weight, torch.finfo(torch.float32).eps))
        assert torch.allclose(module(x), ref, atol=1e-5)


def test_groupnorm_channels_last() -> None:
    m, module, sd = _build("[b = 2, h = 3, w = 5, c = 6]", "y = groupnorm(x, groups = 3, axis = c)")
    assert "GroupNormAt(3, 6, dim=3)" in m.torch_source()
    x = torch.randn(2, 3, 5, 6)
    with torch.no_grad():
        sd["y.weight"].uniform_(0.5, 1.5)
        sd["y.bias"].uniform_(-1, 1)
        g = x.reshape(2, 3, 5, 3, 2)  # the groups of the channels
        mean = g.mean(dim=(1, 2, 4), keepdim=True)
        var = g.var(dim=(1, 2, 4), unbiased=False, keepdim=True)
        ref = ((g - mean) / torch.sqrt(var + 1e-5)).reshape(2, 3, 5, 6) * sd["y.weight"] + sd["y.bias"]
        assert torch.allclose(module(x), ref, atol=1e-5)


@pytest.mark.parametrize("typ,dim", [("[b = 4, h = 3, w = 5, c = 6]", 3), ("[c = 6, b = 4]", 0),
                                     ("[b = 2, s = 2, c = 6, d = 2, h = 2, w = 3]", 2)])
def test_batchnorm_of_any_channel_axis(typ: str, dim: int) -> None:
    m, module, sd = _build(typ, "y = batchnorm(x, axis = c, momentum = 0.5)")
    assert f"BatchNormAt(6, dim={dim}, momentum=0.5)" in m.torch_source()
    shape = [int(a.size) for a in m.check().graph.node(m.check().graph.inputs[0]).type.axes]
    x = torch.randn(*shape) * 3 + 1
    others = tuple(d for d in range(len(shape)) if d != dim)
    bshape = [1] * len(shape)
    bshape[dim] = 6
    with torch.no_grad():
        sd["y.weight"].uniform_(0.5, 1.5)
        sd["y.bias"].uniform_(-1, 1)
        w, b = sd["y.weight"].reshape(bshape), sd["y.bias"].reshape(bshape)
        module.train()  # batch statistics, and the running ones updated
        mean, var = x.mean(dim=others, keepdim=True), x.var(dim=others, unbiased=False, keepdim=True)
        assert torch.allclose(module(x), (x - mean) / torch.sqrt(var + 1e-5) * w + b, atol=1e-4)
        n = x.numel() // 6
        assert torch.allclose(sd["y.running_mean"], 0.5 * mean.reshape(6), atol=1e-5)
        assert torch.allclose(sd["y.running_var"], 0.5 + 0.5 * var.reshape(6) * n / (n - 1), atol=1e-4)
        module.eval()  # the running statistics
        rm, rv = sd["y.running_mean"].reshape(bshape), sd["y.running_var"].reshape(bshape)
        assert torch.allclose(module(x), (x - rm) / torch.sqrt(rv + 1e-5) * w + b, atol=1e-4)


def test_a_groupnorm_of_the_first_axis_is_refused_by_check() -> None:
    """The first axis holds the samples: `archc check` refuses it at the argument, so build never meets it."""
    with pytest.raises(archc.ArchError) as e:
        archc.loads("block T() {\n  in x: [c = 6, b = 2]\n  y = groupnorm(x, groups = 3, axis = c)\n  out y\n}\n",
                    name="t.arch").check()
    d = e.value.diagnostics[0]
    assert d.code == "axis" and (d.span.line, d.span.col) == (3, 32)
    assert "the first axis holds the samples" in d.message


def _stats(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    mean, var = x.mean(dim=dims, keepdim=True), x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


STATELESS = {  # the op, and what it computes on x: [b = 3, c = 6, t = 4, s = 5]
    "layernorm": ("layernorm(x, affine = false)", lambda x: _stats(x, (3,), 1e-5)),
    "layernorm_inner": ("layernorm(x, over = [c, t], affine = false, eps = 0.001)", lambda x: _stats(x, (1, 2), 1e-3)),
    "rmsnorm": ("rmsnorm(x, over = [t, s], affine = false, eps = 0.0001)", lambda x: _rms(x, (2, 3), None, 1e-4)),
    "rmsnorm_inner": ("rmsnorm(x, over = [c], affine = false, eps = 0.0001)", lambda x: _rms(x, (1,), None, 1e-4)),
    "groupnorm": ("groupnorm(x, groups = 2, affine = false)",
                  lambda x: _stats(x.reshape(3, 2, 3, 4, 5), (2, 3, 4), 1e-5).reshape(x.shape)),
    "groupnorm_last": ("groupnorm(x, groups = 5, axis = s, affine = false)",
                       lambda x: _stats(x, (1, 2), 1e-5)),  # 5 groups of one channel each
    "batchnorm": ("batchnorm(x, affine = false, track_running_stats = false)", lambda x: _stats(x, (0, 2, 3), 1e-5)),
    "batchnorm_t": ("batchnorm(x, axis = t, affine = false, track_running_stats = false, eps = 0.01)",
                    lambda x: _stats(x, (0, 1, 3), 1e-2)),
}


@pytest.mark.parametrize("name", sorted(STATELESS))
def test_a_norm_without_state_in_forward(name: str) -> None:
    body, ref = STATELESS[name]
    m, module, sd = _build("[b = 3, c = 6, t = 4, s = 5]", f"y = {body}")
    assert not sd
    x = torch.randn(3, 6, 4, 5) * 2 + 0.5
    for mode in (module.train(), module.eval()):  # no running statistics: the same in both
        assert torch.allclose(mode(x), ref(x), atol=1e-4), name


def _weighted(y: torch.Tensor, dims: tuple[int, ...], *params: torch.Tensor) -> torch.Tensor:
    """y times the weight (plus the bias), whose shape is the `dims` sizes in that order."""
    shape = [1] * y.dim()
    for d, n in zip(dims, params[0].shape):
        shape[d] = n
    order = sorted(range(len(dims)), key=lambda i: dims[i])  # the weight's axes in the tensor's order
    w = params[0].permute(order).reshape(shape)
    out = y * w
    return out + params[1].permute(order).reshape(shape) if len(params) > 1 else out


@pytest.mark.parametrize("body,dims", [
    ("y = layernorm(x, over = [c, s])", (1, 3)),
    ("y = layernorm(x, over = [s, t], eps = 0.001)", (3, 2)),
    ("y = rmsnorm(x, over = [s, c], eps = 0.0001)", (3, 1)),
    ("y = layernorm(x, over = [s, c], affine = false)", (3, 1)),
])
def test_norms_over_axes_apart_or_out_of_order(body: str, dims: tuple[int, ...]) -> None:
    m, module, sd = _build("[b = 3, c = 6, t = 4, s = 5]", body)
    x = torch.randn(3, 6, 4, 5)
    eps = 1e-3 if "0.001" in body else 1e-4 if "0.0001" in body else 1e-5
    with torch.no_grad():
        for v in sd.values():
            v.uniform_(0.5, 1.5)
        if "rmsnorm" in body:
            ref = _weighted(_rms(x, dims, None, eps), dims, sd["y.weight"])
        else:
            ref = _stats(x, dims, eps)
            ref = _weighted(ref, dims, sd["y.weight"], sd["y.bias"]) if sd else ref
        assert torch.allclose(module(x), ref, atol=1e-5)
    assert ("Over(" in m.torch_source()) == bool(sd)


def test_a_batchnorm_of_only_its_channel_axis_is_refused_by_check() -> None:
    """One value per channel: no batch to take statistics over (torch refuses to train it), so `archc check`
    refuses it at the argument rather than build."""
    with pytest.raises(archc.ArchError) as e:
        archc.loads("block T() {\n  in x: [c = 4]\n  y = batchnorm(x, axis = c)\n  out y\n}\n", name="t.arch").check()
    d = e.value.diagnostics[0]
    assert d.code == "axis" and (d.span.line, d.span.col) == (3, 20) and "one value per channel" in d.message
