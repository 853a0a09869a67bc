"""Training memory of the seed zoo (examples/zoo/) against PyTorch: the saved activations `archc memory`
predicts equal, to the byte, the distinct storages autograd keeps in one training-mode forward of the
generated module (tests/test_memory.py's `measure`: CPU, fp32, `saved_tensors_hooks`, parameters and
buffers left out), for every file and entry of the zoo at small sizes. No figure is written here: the
files change, and measured and predicted are compared as they are.

The zoo brings what the six examples do not: FNO's slices of a spectrum given to einsum (copied by
einsum's reshape), Hyena's rfft of a padded signal (kept), Swin's einsums of split heads (copied),
transposed convolutions, grouped and dilated convolutions, gather-excite, GroupNorm, channels-last
norms.
"""

from __future__ import annotations

import pytest
from test_memory import measure

import archc

from conftest import ROOT

torch = pytest.importorskip("torch")

ZOO = ROOT / "examples" / "zoo"

# file, entry (None: the file's entry block) and the sizes and arguments it runs at (free sizes as
# `archc check FILE` lists them, entry arguments as `--set` gives them): small, each case under a second
# or two on two cores; batch 2 where the layout of a batch matters (transposes, einsum's bmm groups).
CASES: list[tuple[str, str | None, dict]] = [
    ("convmixer_768_32", None, dict(H=32, W=32, batch=2, dim=16, depth=2, k=5, patch=4, act="gelu", num_classes=10)),
    ("dcgan", None, dict(batch=2, nz=16, ngf=8)),
    ("dcgan", "Discriminator", dict(batch=2, ndf=8)),
    ("espcn", None, dict(batch=2, H=16, W=16)),
    ("fasternet_t0", None, dict(H=64, W=64, batch=2, dim=16, depths=[1, 1, 1, 1], feature_dim=64, num_classes=10)),
    ("fcn_resnet50", None, dict(H=40, W=40, batch=2, num_classes=5, depths=[1, 1, 1, 1])),
    ("fno2d", None, dict(batch=2, H=16, W=16, modes=4, width=8)),
    ("ge_resnet50", None, dict(H=64, W=64, batch=2, depths=[1, 1, 1, 1], num_classes=10)),
    ("hornet_t", None, dict(H=64, W=64, batch=2, dim=16, depths=[1, 1, 1, 1], num_classes=10)),
    ("hyena", None, dict(batch=2, L=32, d=16, order=8)),
    ("inception_v3", None, dict(H=75, W=75, batch=2, num_classes=10)),  # batch 2: batchnorm of 1x1 maps
    ("mlp_mixer_b16", None, dict(H=32, W=32, batch=2, patch=8, dim=32, depth=2, tokens_mlp=12, channels_mlp=64,
                                 num_classes=10)),
    ("poolformer_s12", None, dict(H=32, W=32, batch=2, layers=[1, 1, 1, 1], dims=[8, 16, 24, 32], num_classes=10)),
    ("se_resnet50", None, dict(H=32, W=32, batch=2, depths=[1, 1, 1, 1], num_classes=10)),
    ("swin_stage", None, dict(H=14, W=21, batch=2, dim=32, heads=2, depth=2, ws=7)),
    ("xception", None, dict(H=48, W=48, batch=2, middle=1, num_classes=10)),
]
# the other activation of each, and an input size no multiple of FCN's output stride (as tests/test_zoo.py)
VARIANTS: list[tuple[str, str | None, dict]] = [
    ("convmixer_768_32", None, dict(H=28, W=28, dim=16, depth=2, num_classes=10)),
    ("fasternet_t0", None, dict(H=64, W=64, dim=16, depths=[1, 1, 1, 1], act="relu", feature_dim=64, num_classes=10)),
    ("fcn_resnet50", None, dict(H=37, W=45, num_classes=3, depths=[1, 1, 1, 2])),
]
IDS = [f + (f":{e}" if e else "") for f, e, _ in CASES] + [f"{f}[variant]" for f, _, _ in VARIANTS]


def test_every_file_of_the_zoo_has_a_case() -> None:
    assert {f for f, _, _ in CASES} == {p.stem for p in ZOO.glob("*.arch")}


@pytest.mark.parametrize(("name", "entry", "sets"), CASES + VARIANTS, ids=IDS)
def test_saved_activations_of_the_zoo(name: str, entry: str | None, sets: dict) -> None:
    model = archc.load(str(ZOO / f"{name}.arch"), entry=entry)
    measured, _ = measure(model, sets)
    assert model.memory(**sets).saved == measured
