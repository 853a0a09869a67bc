"""`archc build --fold-bn` and `archc flops --fold-bn`: batchnorm folded for inference.

The folded module must load the unfolded state_dict (torchvision's keys) through its
FoldBatchNorm pre-hooks with strict=True and compute what the unfolded module computes in
eval mode (max |difference| / max |output| <= 1e-5), with random, non-trivial batchnorm
statistics; its state_dict has a bias per folded layer and no batchnorm entries; the text is
deterministic and lint-clean; `flops --fold-bn` drops the batchnorm rows and their FLOPs.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

import archc
from archc import cli
from archc.codegen.torch import generate, load_class
from archc.dsl.loader import load
from archc.dsl.templates import Templates

from conftest import EXAMPLES

torch = pytest.importorskip("torch")

HAND = """block Net(classes = 5) {
  in x: [batch = 2, chan = 3, h = 16, w = 16]
  conv1 = conv(x, chan -> 8, k = 3, pad = 1, bias = false)
  bn1 = batchnorm(conv1)
  conv2 = conv(relu(bn1), chan -> 8, k = 3, pad = 1, groups = 8)
  bn2 = batchnorm(conv2, eps = 0.001)
  up = conv_transpose(relu(bn2), chan -> 4, k = 2, stride = 2)
  bn3 = batchnorm(up)
  pooled = mean(relu(bn3), over = [h, w])
  fc = linear(pooled, chan -> classes)
  bn4 = batchnorm(fc)
  out bn4
}
"""


def _randomize_bn(net: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial batchnorm statistics and affine parameters (the defaults fold to the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
                m.num_batches_tracked.fill_(7)


def _pair(program_path: str, text: str | None = None) -> tuple[type, type, str]:
    program = load(program_path, text)
    plain = generate(Templates(program))
    folded = generate(Templates(program), fold_bn=True)
    return load_class(plain), load_class(folded), folded.text


def _compare(plain_cls: type, folded_cls: type, x: torch.Tensor) -> tuple[float, dict, dict]:
    torch.manual_seed(0)
    plain = plain_cls().eval()
    _randomize_bn(plain)
    sd = plain.state_dict()
    folded = folded_cls().eval()
    folded.load_state_dict(sd, strict=True)
    with torch.no_grad():
        want, got = plain(x), folded(x)
    rel = ((got - want).abs().max() / want.abs().max()).item()
    return rel, sd, folded.state_dict()


def _bn_prefixes(sd: dict) -> set[str]:
    return {k.rsplit(".", 1)[0] for k in sd if k.endswith(".running_mean")}


def test_hand_written_conv_bn(tmp_path: pathlib.Path) -> None:
    plain_cls, folded_cls, text = _pair("hand.arch", HAND)
    assert text.count("FoldBatchNorm(\"") == 4
    assert 'FoldBatchNorm("up", "bn3", eps=1e-05, transposed=True)' in text
    assert 'FoldBatchNorm("conv2", "bn2", eps=0.001)' in text
    rel, sd, fsd = _compare(plain_cls, folded_cls, torch.randn(2, 3, 16, 16))
    assert rel <= 1e-5, rel
    assert _bn_prefixes(fsd) == set() and {"conv1.bias", "conv2.bias", "up.bias", "fc.bias"} <= set(fsd)
    assert set(fsd) == {k for k in sd if not k.startswith("bn")} | {"conv1.bias", "conv2.bias"}


@pytest.mark.parametrize("name, pairs", [("resnet50", 53), ("mobilenet_v2", 52), ("unet", 18)])
def test_examples_fold_and_compute_the_same(name: str, pairs: int) -> None:
    plain_cls, folded_cls, text = _pair(str(EXAMPLES / f"{name}.arch"))
    x = torch.randn(2, 3 if name != "unet" else _unet_channels(), 64, 64)
    rel, sd, fsd = _compare(plain_cls, folded_cls, x)
    print(f"{name}: max relative difference {rel:.2e}")
    assert rel <= 1e-5, rel
    bns = _bn_prefixes(sd)
    assert len(bns) == pairs and _bn_prefixes(fsd) == set()
    assert not any(k.rsplit(".", 1)[0] in bns for k in fsd)
    assert len(fsd) == len(sd) - 5 * len(bns) + len(bns)


def _unet_channels() -> int:
    graph = archc.load(str(EXAMPLES / "unet.arch")).check().graph
    return int(graph.node(graph.inputs[0]).tensor_type.size("chan"))


@pytest.mark.parametrize("name", ["convnext_tiny", "vit_b_16"])
def test_without_batchnorm_the_text_is_unchanged(name: str) -> None:
    m = archc.load(str(EXAMPLES / f"{name}.arch"))
    assert m.torch_source(fold_bn=True) == m.torch_source()


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_torchvision_keys_load_strictly(name: str, state_dict_keys: dict) -> None:
    """A state_dict with exactly torchvision's keys and shapes (values random) loads with strict=True."""
    g = torch.Generator().manual_seed(1)
    sd = {k: (torch.rand(shape, generator=g) + 0.5) if shape else torch.tensor(3)
          for k, shape in state_dict_keys[name].items()}
    folded = archc.load(str(EXAMPLES / f"{name}.arch")).torch(fold_bn=True)()
    folded.load_state_dict(sd, strict=True)
    assert all("running" not in k for k in folded.state_dict())


def test_folded_state_dict_reloads_and_the_module_still_trains_shapes() -> None:
    plain_cls, folded_cls, _ = _pair("hand.arch", HAND)
    a = folded_cls().eval()
    a.load_state_dict(plain_cls().state_dict())
    b = folded_cls().eval()
    b.load_state_dict(a.state_dict(), strict=True)  # already folded: loads as it is
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(a(x), b(x))


def test_text_is_deterministic_and_ruff_clean(tmp_path: pathlib.Path) -> None:
    texts = set()
    for seed in ("1", "4242"):
        out = tmp_path / seed
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-m", "archc.cli", "build", str(EXAMPLES / "mobilenet_v2.arch"), "-o",
                        str(out), "--fold-bn"], check=True, env={**__import__("os").environ, **env},
                       capture_output=True, cwd=tmp_path)
        texts.add((out / "mobilenet_v2.py").read_text())
    texts.add(archc.load(str(EXAMPLES / "mobilenet_v2.arch")).torch_source(fold_bn=True))
    assert len(texts) == 1
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "mobilenet_v2_folded.py"
    path.write_text(texts.pop())
    subprocess.run([ruff, "check", "--isolated", "--line-length", "300", "--select", "E,F,W,I,B,UP,N",
                    "--ignore", "E741,B905,N812,N818", str(path)], check=True, capture_output=True)


def test_flag_off_changes_nothing() -> None:
    m = archc.load(str(EXAMPLES / "resnet50.arch"))
    golden = pathlib.Path(__file__).parent / "golden" / "torch" / "resnet50.py"
    assert m.torch_source() == golden.read_text()
    assert "FoldBatchNorm" not in m.torch_source()


def test_build_cli_json(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "hand.arch"
    src.write_text(HAND)
    assert cli.main(["build", str(src), "-o", str(tmp_path), "--fold-bn", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fold_bn"] is True
    assert "# Inference batchnorm folded" in pathlib.Path(doc["path"]).read_text()


# ---- flops ----------------------------------------------------------------------------------------


def test_flops_fold_bn_drops_the_batchnorm_work() -> None:
    m = archc.load(str(EXAMPLES / "resnet50.arch"))
    plain, folded = m.flops(), m.flops(fold_bn=True)
    assert any(r.op == "batchnorm" for r in plain.rows)
    assert not any(r.op == "batchnorm" for r in folded.rows)
    assert "norm" in plain.by_kind and "norm" not in folded.by_kind
    bn_params = sum(r.params for r in plain.rows if r.op == "batchnorm")
    bias = sum(int(r.node.params[-1].shape[0]) for r in folded.rows if r.op == "conv")
    assert bn_params == 2 * bias  # gamma and beta per channel; the running stats are buffers
    assert folded.params == plain.params - bn_params + bias
    assert folded.buffers == 0 and plain.buffers > 0
    conv_out = sum(r.node.tensor_type.numel() for r in folded.rows if r.op == "conv")
    assert folded.by_kind["bias"] == plain.by_kind.get("bias", 0) + conv_out
    assert folded.flops == plain.flops  # torch's convention counts only contractions
    full, full_folded = m.flops("full"), m.flops("full", fold_bn=True)
    assert full_folded.flops == full.flops - 2 * conv_out + conv_out  # 2 per element normalised, 1 per bias


def test_flops_cli_fold_bn(capsys: pytest.CaptureFixture[str]) -> None:
    src = str(EXAMPLES / "mobilenet_v2.arch")
    assert cli.main(["flops", src]) == 0
    plain = capsys.readouterr().out
    assert cli.main(["flops", src, "--fold-bn"]) == 0
    folded = capsys.readouterr().out
    assert " batchnorm " in plain and " batchnorm " not in folded
    assert "norm" in plain.split("by kind")[1] and "  norm" not in folded.split("by kind")[1]
    params = {t: int(out.split("params = ")[1].split()[0].replace(",", "")) for t, out in
              (("plain", plain), ("folded", folded))}
    channels = sum(n.tensor_type.size("chan") for n in archc.load(src).check().graph if n.op.value == "batchnorm")
    assert params["plain"] - params["folded"] == channels  # gamma and beta out, a bias in, per channel
