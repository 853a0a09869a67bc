"""The benchmarks' inputs are right: what they time is the same work on both sides.

- benchmarks/resnet152.arch has exactly the parameters, state_dict keys and
  shapes, and FLOPs of the torch peer (benchmarks/peer_resnet152_meta.py, a
  torchvision-style ResNet-152 counted by FlopCounterMode on the meta device).
- The stacks that benchmarks/bench_scaling.py generates cost what their blocks
  cost by hand, N times, symbolically and concretely.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

import archc
from archc.shapes.sizes import evaluate

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def peer_resnet152():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    peer = _module("peer_resnet152_meta")
    with torch.device("meta"):
        model = peer.resnet152().eval()
        x = torch.empty(1, 3, 224, 224)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model(x)
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    params = sum(p.numel() for p in model.parameters())
    return {"keys": keys, "params": params, "flops": counter.get_total_flops(),
            "output": tuple(out.shape)}


def test_resnet152_arch_matches_the_torch_peer(peer_resnet152):
    model = archc.load(str(BENCH / "resnet152.arch"))
    rep = model.flops()
    g = rep.graph
    assert rep.params == peer_resnet152["params"] == 60_192_808
    assert rep.flops == peer_resnet152["flops"]
    ours = {k: tuple(int(s) for s in shape) for k, (shape, _) in g.state_dict().items()}
    assert list(ours) == list(peer_resnet152["keys"])  # same keys, same order
    assert ours == peer_resnet152["keys"]
    assert g.node(g.outputs[0]).type.shape == peer_resnet152["output"]


def test_resnet152_symbolic_flops_evaluate_to_the_concrete_ones():
    model = archc.load(str(BENCH / "resnet152.arch"))
    sym = model.flops(symbolic=True)
    for hw in (224, 160):
        conc = model.flops(H=hw, W=hw)
        values = {"batch": 1, "H": hw, "W": hw}
        assert evaluate(sym.flops, values) == conc.flops
        assert evaluate(sym.params, values) == conc.params


# FLOPs of one block of each generated kind, by hand (2 per multiply-add; no bias in conv):
#   mlp:  two linears d -> 4d -> d over batch*L tokens:   2 * 2 * batch*L * d*4d
#   conv: two 3x3 convs c -> c over batch*H*W positions:  2 * 2 * batch*H*W * c*c*9
def _mlp_block(batch=8, tokens=196, d=256):
    return 2 * 2 * batch * tokens * d * 4 * d


def _conv_block(batch=8, h=56, w=56, c=64):
    return 2 * 2 * batch * h * w * c * c * 9


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("kind,per_block", [("mlp", _mlp_block()), ("conv", _conv_block())])
def test_generated_stacks_cost_n_blocks(kind, per_block, n):
    scaling = _module("bench_scaling")
    model = archc.loads(scaling.stack_text(kind, n), f"stack_{kind}_{n}.arch")
    conc = model.flops()
    assert conc.flops == n * per_block
    sym = model.flops(symbolic=True)
    assert sym.value(sym.flops) == conc.flops
    assert sym.value(sym.params) == conc.params
    assert len(sym.graph) == len(conc.graph)


def test_generated_stack_grows_by_whole_blocks():
    scaling = _module("bench_scaling")
    one = archc.loads(scaling.stack_text("conv", 1)).check().graph
    five = archc.loads(scaling.stack_text("conv", 5)).check().graph
    per_block = (len(five) - len(one)) // 4
    assert len(five) - len(one) == 4 * per_block and per_block > 0
    assert len(five.state_dict()) == 5 * len(one.state_dict())  # the entry owns no parameters
