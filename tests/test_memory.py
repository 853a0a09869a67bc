"""Training memory (`archc memory`, analysis/memory.py) against PyTorch itself.

- saved activations: every example, built by archc's own code generation and run forward in train
  mode on CPU in fp32 under `torch.autograd.graph.saved_tensors_hooks`, keeps exactly the bytes
  archc predicts, counted as distinct storages (a view counts as its base, a tensor two ops keep
  once), parameters and buffers excluded; the small programs of tests/data/memory/ cover the ops
  the examples do not use;
- parameter, gradient and optimizer-state bytes equal what backward and a real `torch.optim` step
  (SGD, SGD with momentum, Adam, AdamW) allocate;
- checkpointing a block keeps what the rest keeps plus the block's inputs (torch.utils.checkpoint);
- the CLI: totals, JSON, closed forms, located errors.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import pytest

import archc
from archc import cli
from archc.analysis.memory import training_memory

from conftest import EXAMPLES, ROOT

torch = pytest.importorskip("torch")

DATA = ROOT / "tests" / "data" / "memory"
# Small but real sizes: every figure is exact at any size; these keep the file fast (batch 2 where the
# layout of a batch matters: transposes, multihead attention's copies).
SIZES = {
    "mobilenet_v2": {"H": 64, "W": 64, "batch": 2},
    "resnet50": {"H": 64, "W": 64},
    "convnext_tiny": {"H": 64, "W": 64},
    "unet": {"H": 64, "W": 64},
    "vit_b_16": {"H": 32, "W": 32, "batch": 2},
    "transformer_encoder": {"L": 8, "batch": 2},
}
PROGRAMS = sorted(p.stem for p in DATA.glob("*.arch"))


def test_every_example_has_sizes() -> None:
    assert set(SIZES) == {p.stem for p in EXAMPLES.glob("*.arch")}


def inputs_of(graph) -> tuple:
    out = []
    for i in graph.inputs:
        t = graph.node(i).type
        shape = [int(a.size) for a in t.axes]
        out.append(torch.randint(0, 8, shape) if t.dtype.startswith("i") else torch.randn(*shape))
    return tuple(out)


def measure(model, sets: dict) -> tuple[int, int]:
    """(bytes of the distinct storages autograd saves, parameters and buffers excluded; the same with
    buffers counted) for one training-mode forward of the generated module."""
    graph = model.check(**sets).graph
    torch.manual_seed(0)
    net = model.torch(**sets)().train()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    buffers = {b.untyped_storage().data_ptr() for b in net.buffers()}
    seen: dict[int, int] = {}
    kept = []

    def pack(t):
        s = t.untyped_storage()
        kept.append(t)  # alive until counted: no address is reused meanwhile
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(*inputs_of(graph))
    activations = sum(n for p, n in seen.items() if p not in buffers)
    return activations, sum(seen.values())


@pytest.mark.parametrize("name", sorted(SIZES))
def test_saved_activations_of_every_example(name: str) -> None:
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    measured, _ = measure(model, SIZES[name])
    assert model.memory(**SIZES[name]).saved == measured


def test_mobilenet_v2_at_224_keeps_what_the_issue_measured() -> None:
    """Issue 13's figure, 78,482,432 bytes at batch 1, 224x224, counts the batchnorms' running statistics
    (buffers autograd also keeps: 136,448 bytes); archc reports them as buffers, not activations."""
    model = archc.load(str(EXAMPLES / "mobilenet_v2.arch"))
    activations, with_buffers = measure(model, {})
    mem = model.memory(batch=1)
    assert mem.saved == activations == 78_345_984
    running = sum(p.nbytes() for n in mem.graph for p in n.params if p.name in ("running_mean", "running_var"))
    assert with_buffers == mem.saved + running == 78_482_432


@pytest.mark.parametrize("name", PROGRAMS)
def test_saved_activations_of_every_op(name: str) -> None:
    model = archc.load(str(DATA / f"{name}.arch"))
    measured, _ = measure(model, {})
    assert model.memory().saved == measured


def test_the_programs_cover_every_op() -> None:
    from archc.ops.registry import BY_NAME
    used = {n.op.name for p in list(DATA.glob("*.arch")) + list(EXAMPLES.glob("*.arch"))
            for n in archc.load(str(p)).check(**SIZES.get(p.stem, {})).graph}
    assert set(BY_NAME) <= used, sorted(set(BY_NAME) - used)


# ---- parameters, gradients and optimizer state against torch.optim ---------------------------------


def _optimizer(net, optimizer: str):
    params = list(net.parameters())
    return {"sgd": lambda: torch.optim.SGD(params, lr=0.1),
           "momentum": lambda: torch.optim.SGD(params, lr=0.1, momentum=0.9),
           "adam": lambda: torch.optim.Adam(params),
           "adamw": lambda: torch.optim.AdamW(params)}[optimizer]()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("path", [DATA / "constants.arch", DATA / "tokens.arch", EXAMPLES / "mobilenet_v2.arch"],
                         ids=lambda p: p.stem)
def test_state_is_what_an_optimizer_step_allocates(path: pathlib.Path, optimizer: str) -> None:
    """Learned tensors of layers and `param`s, buffers (mobilenet_v2's running statistics)."""
    sizes = {"H": 32, "W": 32, "batch": 2} if path.parent == EXAMPLES else {}
    model = archc.load(str(path))
    graph = model.check(**sizes).graph
    net = model.torch(**sizes)().train()
    opt = _optimizer(net, optimizer)
    net(*inputs_of(graph)).sum().backward()
    opt.step()
    mem = training_memory(graph, optimizer)
    params = list(net.parameters())
    assert mem.params == sum(p.untyped_storage().nbytes() for p in params)
    assert mem.grads == sum(p.grad.untyped_storage().nbytes() for p in params)
    state = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
             for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)}
    assert mem.optimizer_state == sum(state.values())
    assert mem.buffers == sum(b.untyped_storage().nbytes() for b in net.buffers())
    assert mem.master == 0


def test_mixed_precision_keeps_fp32_master_weights_and_state() -> None:
    model = archc.load(str(EXAMPLES / "resnet50.arch"))
    full, half = model.memory(), model.memory(dtype="bf16", optimizer="adamw")
    n = full.params // 4
    assert half.params == half.grads == 2 * n and half.master == 4 * n
    assert half.optimizer_state == full.optimizer_state == 8 * n + 4 * 161  # exp_avg, exp_avg_sq; 161 steps
    assert half.saved < full.saved


# ---- checkpointing -------------------------------------------------------------------------------------


def test_checkpointing_a_block_keeps_its_inputs_instead() -> None:
    """torch.utils.checkpoint around features.3 of the generated MobileNetV2: what autograd keeps outside it,
    plus the block's input (held by the checkpoint), is archc's figure with --checkpoint features.3."""
    from torch.utils.checkpoint import checkpoint
    sizes = {"H": 64, "W": 64, "batch": 2}
    model = archc.load(str(EXAMPLES / "mobilenet_v2.arch"))
    graph = model.check(**sizes).graph
    net = model.torch(**sizes)().train()
    block = net.features[3]
    inner = block.forward
    held = []

    def wrapped(x):
        held.append(x)
        return checkpoint(inner, x, use_reentrant=False)

    block.forward = wrapped
    params = {p.untyped_storage().data_ptr() for p in list(net.parameters()) + list(net.buffers())}
    seen: dict[int, int] = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = net(*inputs_of(graph))
    for x in held:
        seen[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
    mem = model.memory(checkpoint="features.3", **sizes)
    assert mem.checkpoint.saved == sum(seen.values())
    assert mem.checkpoint.saving == mem.saved - mem.checkpoint.saved > 0
    y.sum().backward()  # and it still trains
    every = model.memory(checkpoint="InvertedResidual", **sizes).checkpoint
    assert len(every.paths) == 17 and every.saving > mem.checkpoint.saving


# ---- the command line ----------------------------------------------------------------------------------


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_prints_the_totals_and_the_ops() -> None:
    code, out, _ = run("memory", EXAMPLES / "mobilenet_v2.arch", "--batch", "1", "--optimizer", "sgd")
    assert code == 0
    assert "saved activations  78,345,984" in out
    assert "features.0.0          conv" in out
    assert "optimizer state    0" in out
    code, out, _ = run("memory", EXAMPLES / "resnet50.arch", "--depth", "1", "--set", "H=64", "--set", "W=64")
    assert code == 0 and "layer1    32" in out and "bn1" in out


def test_cli_json_and_batch() -> None:
    code, out, _ = run("memory", EXAMPLES / "resnet50.arch", "--json", "--batch", "4", "--checkpoint", "layer2",
                       "--set", "H=64", "--set", "W=64")
    doc = json.loads(out)
    mem = archc.load(str(EXAMPLES / "resnet50.arch")).memory(batch=4, H=64, W=64, checkpoint="layer2")
    assert code == 0 and doc["sizes"]["batch"] == 4 and doc["saved_bytes"] == mem.saved
    assert doc["saved_bytes"] == sum(op["saved_bytes"] for op in doc["ops"])
    assert doc["checkpoint"]["saving_bytes"] == mem.saved - mem.checkpoint.saved
    assert doc["peak_bytes"] == sum(doc[k] for k in ("param_bytes", "master_bytes", "grad_bytes", "optimizer_bytes",
                                                     "buffer_bytes", "saved_bytes", "transient_bytes"))


def test_symbolic_closed_forms_evaluate_to_the_figures() -> None:
    model = archc.load(str(EXAMPLES / "transformer_encoder.arch"))
    expr = model.memory(symbolic=True).saved
    symbols = {s.name: s for s in expr.free_symbols}
    for length, b in ((8, 2), (16, 1), (33, 3)):
        assert expr.subs({symbols["L"]: length, symbols["batch"]: b}) == model.memory(L=length, batch=b).saved
    code, out, _ = run("memory", EXAMPLES / "transformer_encoder.arch", "--symbolic", "--no-layers")
    assert code == 0 and "L²·batch" in out


def test_errors_are_located(tmp_path: pathlib.Path) -> None:
    code, _, err = run("memory", EXAMPLES / "mobilenet_v2.arch", "--checkpoint", "featurs.3")
    assert code == 1
    assert "mobilenet_v2.arch:14:1: error: --checkpoint featurs.3" in err and "did you mean 'features.3'" in err
    assert "Traceback" not in err
    code, _, err = run("memory", EXAMPLES / "mobilenet_v2.arch", "--batch", "0")
    assert code == 1 and "error: --batch 0" in err
    free = tmp_path / "nobatch.arch"
    free.write_text("block B() { in x: [n = 2, c = 4]\n fc = linear(x, c -> 4)\n out fc }\n")
    code, _, err = run("memory", free, "--batch", "4")
    assert code == 1 and "--batch: the file has no free size `batch`" in err


def test_the_transcript_in_docs_costs_md_is_current() -> None:
    text = (ROOT / "docs" / "costs.md").read_text(encoding="utf-8")
    start = text.index("$ archc memory ")
    command, rest = text[start:].split("\n", 1)
    shown = rest[:rest.index("```")]
    args = command.split()[3:]
    code, out, _ = run("memory", ROOT / args[0], *args[1:])
    assert code == 0 and out.replace(str(ROOT) + "/", "") == shown
