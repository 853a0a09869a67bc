"""A block parameter that only a stateless op uses (the factor of `pixel_shuffle`, a pooling window)
is an attribute of the generated class that forward reads (`self.r`); `archc build` wrote it as the
constructor's bare name before, and the module failed with NameError when it ran (issue 11)."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")
F = torch.nn.functional

ESPCN = """
size batch = 1, H = 8, W = 8

block Upscale(r) {
  in x: [batch, chan, h, w]
  out pixel_shuffle(x, r = r)
}

entry block ESPCN(scale = 3) {
  in x: [batch, chan = 1, h = H, w = W]
  c1 = conv(x, chan -> 16, k = 5, pad = 2)
  c2 = conv(tanh(c1), chan -> scale * scale, k = 3, pad = 1)
  up = Upscale(c2, scale)
  up2 = Upscale(c2, 1)
  out sigmoid(up), up2
}
"""

POOLFORMER = """
size batch = 1, H = 8

block Pooling(pool_size = 3) {
  in x: [batch, chan, h, w]
  out avgpool(x, k = pool_size, stride = 1, pad = pool_size // 2, count_include_pad = false) - x
}

block PoolBlock(dim, pool_size = 3) {
  in x: [batch, chan = dim, h, w]
  norm1 = groupnorm(x, groups = 1)
  token_mixer = Pooling(norm1, pool_size)
  param layer_scale_1: [chan = dim, h = 1, w = 1] = 1e-5
  out x + layer_scale_1 * token_mixer
}

block Down(k) {
  in x: [batch, chan, h, w]
  out maxpool(x, k = k) + avgpool(x, k = k, stride = k)
}

entry block Net() {
  in x: [batch, chan = 4, h = H, w = H]
  b0 = PoolBlock(x, 4)
  b1 = PoolBlock(b0, 4, pool_size = 5)
  d = Down(b1, 2)
  out d
}
"""


def test_espcn_factor_is_read_in_forward() -> None:
    m = archc.loads(ESPCN)
    src = m.torch_source()
    assert "F.pixel_shuffle(x, self.r)" in src and "self.r = r" in src
    module = m.torch()().eval()
    x = torch.randn(2, 1, 8, 8)
    up, up2 = module(x)
    assert tuple(up.shape) == (2, 1, 24, 24) and tuple(up2.shape) == (2, 9, 8, 8)
    sd = module.state_dict()
    h = torch.tanh(F.conv2d(x, sd["c1.weight"], sd["c1.bias"], padding=2))
    h = F.conv2d(h, sd["c2.weight"], sd["c2.bias"], padding=1)
    assert torch.allclose(up, torch.sigmoid(F.pixel_shuffle(h, 3)), atol=1e-6)
    assert torch.allclose(up2, h, atol=1e-6)
    # the entry's own parameter too: another scale is another upscaling
    assert tuple(m.torch()(scale=2)(x)[0].shape) == (2, 1, 16, 16)


def test_poolformer_window_is_read_in_forward() -> None:
    m = archc.loads(POOLFORMER)
    src = m.torch_source()
    assert "padding=self.pool_size // 2" in src
    module = m.torch()().eval()
    x = torch.randn(2, 4, 8, 8)
    y = module(x)
    sd = module.state_dict()
    ref = x
    for name, k in (("b0", 3), ("b1", 5)):
        n = F.group_norm(ref, 1, sd[f"{name}.norm1.weight"], sd[f"{name}.norm1.bias"])
        mixed = F.avg_pool2d(n, k, stride=1, padding=k // 2, count_include_pad=False) - n
        ref = ref + sd[f"{name}.layer_scale_1"] * mixed
    ref = F.max_pool2d(ref, 2) + F.avg_pool2d(ref, 2, stride=2)
    assert tuple(y.shape) == (2, 4, 4, 4)
    assert torch.allclose(y, ref, atol=1e-6)
