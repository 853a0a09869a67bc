"""Hand-written torch.nn references for the seed zoo (examples/zoo/), written from the papers.

Each class is written as the paper describes the model, in plain torch, with its children named as
the .arch example names its layers, so the generated module loads the reference's state_dict with
`strict=True`. Nothing here imports archc; tests/test_zoo.py compares the two.
"""

from __future__ import annotations

import torch
from torch import nn


class MixerBlock(nn.Module):
    """One Mixer layer: token mixing across patches, then channel mixing, both pre-norm and residual."""

    def __init__(self, tokens: int, dim: int, tokens_mlp: int, channels_mlp: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.token_mixing = nn.Sequential()
        self.token_mixing.add_module("fc1", nn.Linear(tokens, tokens_mlp))
        self.token_mixing.add_module("act", nn.GELU())
        self.token_mixing.add_module("fc2", nn.Linear(tokens_mlp, tokens))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.channel_mixing = nn.Sequential()
        self.channel_mixing.add_module("fc1", nn.Linear(dim, channels_mlp))
        self.channel_mixing.add_module("act", nn.GELU())
        self.channel_mixing.add_module("fc2", nn.Linear(channels_mlp, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [batch, tokens, dim]
        x = x + self.token_mixing(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mixing(self.norm2(x))


class MLPMixer(nn.Module):
    """MLP-Mixer (Tolstikhin et al. 2021); the defaults are B/16 at 224x224."""

    def __init__(self, image: int = 224, patch: int = 16, dim: int = 768, depth: int = 12,
                 tokens_mlp: int = 384, channels_mlp: int = 3072, num_classes: int = 1000):
        super().__init__()
        tokens = (image // patch) ** 2
        self.stem = nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, dim, tokens_mlp, channels_mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


def conv_mixer(dim: int = 768, depth: int = 32, kernel_size: int = 7, patch_size: int = 7,
               act: type[nn.Module] = nn.ReLU, n_classes: int = 1000) -> nn.Sequential:
    """ConvMixer (Trockman & Kolter 2023), as the paper's listing writes it; the defaults are 768/32."""
    return nn.Sequential(
        nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size),
        act(),
        nn.BatchNorm2d(dim),
        *[nn.Sequential(
            Residual(nn.Sequential(nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same"),
                                   act(),
                                   nn.BatchNorm2d(dim))),
            nn.Conv2d(dim, dim, kernel_size=1),
            act(),
            nn.BatchNorm2d(dim),
        ) for _ in range(depth)],
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(dim, n_classes),
    )


def dcgan_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Sequential:
    """DCGAN's 64x64 generator (Radford et al. 2016): a 100-d code to a 64x64 image."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8),
                               nn.ReLU(True)]
    for cin, cout in ((ngf * 8, ngf * 4), (ngf * 4, ngf * 2), (ngf * 2, ngf)):
        layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def dcgan_discriminator(ndf: int = 64, nc: int = 3) -> nn.Sequential:
    """DCGAN's 64x64 discriminator: strided convs, LeakyReLU 0.2, no batchnorm on the first layer."""
    layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for cin, cout in ((ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8)):
        layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Squeeze (global average) and excitation (FC, ReLU, FC, sigmoid) on the channels (Hu et al. 2018).
    The two FC layers act on the pooled 1x1 map as 1x1 convs, torchvision's layout."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class SEBottleneck(nn.Module):
    """ResNet's bottleneck (stride on the 3x3) with SE on the residual branch before the sum."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, reduction: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.se = SqueezeExcitation(planes * 4, planes * 4 // reduction)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class SEResNet50(nn.Module):
    def __init__(self, depths: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for s, depth in enumerate(depths, start=1):
            planes, blocks = 64 * 2 ** (s - 1), []
            for j in range(depth):
                blocks.append(SEBottleneck(inplanes, planes, 2 if s > 1 and j == 0 else 1))
                inplanes = planes * 4
            self.add_module(f"layer{s}", nn.Sequential(*blocks))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


class SeparableConv(nn.Module):
    """A depthwise 3x3 conv then a pointwise 1x1 conv, no biases (Xception's separable convolution)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    def __init__(self, cin: int, widths: list[int], stride: int = 1, start_relu: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for i, width in enumerate(widths):
            if i > 0 or start_relu:
                layers.append(nn.ReLU())                 # not in place: the shortcut reads x
            layers += [SeparableConv(c, width), nn.BatchNorm2d(width)]
            c = width
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)
        self.shortcut = None
        if stride != 1 or cin != c:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + (x if self.shortcut is None else self.shortcut(x))


class Xception(nn.Module):
    """Xception (Chollet 2017): entry flow, `middle` middle-flow blocks (8 in the paper), exit flow."""

    def __init__(self, middle: int = 8, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.blocks = nn.Sequential(
            XceptionBlock(64, [128, 128], 2, start_relu=False),
            XceptionBlock(128, [256, 256], 2),
            XceptionBlock(256, [728, 728], 2),
            *[XceptionBlock(728, [728, 728, 728]) for _ in range(middle)],
            XceptionBlock(728, [728, 1024], 2))
        self.conv3 = SeparableConv(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        x = torch.relu(self.bn3(self.conv3(self.blocks(x))))
        x = torch.relu(self.bn4(self.conv4(x)))
        return self.fc(x.mean(dim=(2, 3)))


class PartialConv(nn.Module):
    """PConv: a 3x3 conv on the first dim / n_div channels; the others pass through untouched."""

    def __init__(self, dim: int, n_div: int = 4):
        super().__init__()
        self.part = dim // n_div
        self.partial_conv3 = nn.Conv2d(self.part, self.part, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, rest = torch.split(x, [self.part, x.shape[1] - self.part], dim=1)
        return torch.cat((self.partial_conv3(first), rest), dim=1)


class FasterNetBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: int = 2, n_div: int = 4, act: type[nn.Module] = nn.GELU):
        super().__init__()
        self.spatial_mixing = PartialConv(dim, n_div)
        self.mlp = nn.Sequential(nn.Conv2d(dim, dim * mlp_ratio, 1, bias=False), nn.BatchNorm2d(dim * mlp_ratio),
                                 act(), nn.Conv2d(dim * mlp_ratio, dim, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.spatial_mixing(x))


class FasterNet(nn.Module):
    """FasterNet (Chen et al. 2023); the defaults are T0."""

    def __init__(self, dim: int = 40, depths: tuple[int, ...] = (1, 2, 8, 2), mlp_ratio: int = 2, n_div: int = 4,
                 act: type[nn.Module] = nn.GELU, feature_dim: int = 1280, num_classes: int = 1000):
        super().__init__()
        self.patch_embed = nn.Sequential(nn.Conv2d(3, dim, 4, 4, bias=False), nn.BatchNorm2d(dim))
        stages: list[nn.Module] = []
        for s, depth in enumerate(depths):
            width = dim * 2 ** s
            stages.append(nn.Sequential(*[FasterNetBlock(width, mlp_ratio, n_div, act) for _ in range(depth)]))
            if s < len(depths) - 1:
                stages.append(nn.Sequential(nn.Conv2d(width, width * 2, 2, 2, bias=False), nn.BatchNorm2d(width * 2)))
        self.stages = nn.Sequential(*stages)
        self.pre_head = nn.Sequential(nn.Conv2d(dim * 2 ** (len(depths) - 1), feature_dim, 1, bias=False), act())
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.patch_embed(x))
        x = self.pre_head(x.mean(dim=(2, 3), keepdim=True))
        return self.head(x.flatten(1))


class BasicConv2d(nn.Module):
    """Inception-v3's conv unit: conv without bias, batchnorm (eps 0.001), ReLU."""

    def __init__(self, cin: int, cout: int, k: int | tuple[int, int] = 1, stride: int = 1,
                 pad: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


def avg3(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.avg_pool2d(x, 3, 1, 1)


class InceptionA(nn.Module):
    """Figure 5's module at 35x35 (with the released model's 5x5 branch beside the two 3x3s)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64)
        self.branch5x5_1 = BasicConv2d(cin, 48)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, pad=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, pad=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, pad=1)
        self.branch_pool = BasicConv2d(cin, pool_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(avg3(x))], 1)


class ReductionA(nn.Module):
    """Grid reduction 35x35 -> 17x17 (figure 10): strided convs beside a strided max pooling."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, 2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, pad=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, nn.functional.max_pool2d(x, 3, 2)], 1)


class InceptionB(nn.Module):
    """Figure 6's module at 17x17: 7x7 convs factorized into 1x7 and 7x1 (n = 7)."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        row, col = dict(k=(1, 7), pad=(0, 3)), dict(k=(7, 1), pad=(3, 0))
        self.branch1x1 = BasicConv2d(cin, 192)
        self.branch7x7_1 = BasicConv2d(cin, c7)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(cin, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(avg3(x))], 1)


class ReductionB(nn.Module):
    """Grid reduction 17x17 -> 8x8."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, 2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), pad=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), pad=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, nn.functional.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    """Figure 7's module at 8x8: the expanded filter bank, 1x3 and 3x1 side by side."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320)
        self.branch3x3_1 = BasicConv2d(cin, 384)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), pad=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), pad=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, pad=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), pad=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), pad=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(avg3(x))], 1)


class InceptionV3(nn.Module):
    """Inception-v3 without the auxiliary classifier: stem, 3 A, reduction, 4 B, reduction, 2 C, head."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, 2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, pad=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = ReductionA(288)
        self.Mixed_6b = InceptionB(768, 128)
        self.Mixed_6c = InceptionB(768, 160)
        self.Mixed_6d = InceptionB(768, 160)
        self.Mixed_6e = InceptionB(768, 192)
        self.Mixed_7a = ReductionB(768)
        self.Mixed_7b = InceptionC(1280)
        self.Mixed_7c = InceptionC(2048)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(nn.functional.max_pool2d(x, 3, 2)))
        x = nn.functional.max_pool2d(x, 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return self.fc(x.mean(dim=(2, 3)))


class GatherExcite(nn.Module):
    """GE-θ with global extent: gather by a depthwise conv over the whole `size` x `size` map and
    batchnorm, excite by the sigmoid of the gathered value, per channel."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.gather = nn.Sequential(nn.Conv2d(channels, channels, size, groups=channels, bias=False),
                                    nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.gather(x))


class GEBottleneck(SEBottleneck):
    """ResNet's bottleneck with the gather-excite gate on the residual branch before the sum."""

    def __init__(self, inplanes: int, planes: int, stride: int, size: int):
        super().__init__(inplanes, planes, stride)
        del self.se
        self.ge = GatherExcite(planes * 4, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.ge(self.bn3(self.conv3(out)))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class GEResNet50(nn.Module):
    def __init__(self, image: int = 224, depths: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        size = ((image - 1) // 2) // 2 + 1               # after the stem: the conv and the pooling
        inplanes = 64
        for s, depth in enumerate(depths, start=1):
            planes, blocks = 64 * 2 ** (s - 1), []
            if s > 1:
                size = (size - 1) // 2 + 1
            for j in range(depth):
                blocks.append(GEBottleneck(inplanes, planes, 2 if s > 1 and j == 0 else 1, size))
                inplanes = planes * 4
            self.add_module(f"layer{s}", nn.Sequential(*blocks))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


class DilatedBottleneck(nn.Module):
    """ResNet's bottleneck (stride on the 3x3) whose 3x3 conv may be dilated (padding = dilation)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class DilatedResNet50(nn.Module):
    """ResNet-50 to layer4; layers 3 and 4 replace their stride 2 by dilation (output stride 8): a
    dilated layer's first block keeps the dilation so far, the others double it."""

    def __init__(self, depths: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes, dilation = 64, 1
        for s, depth in enumerate(depths, start=1):
            planes, stride, first = 64 * 2 ** (s - 1), 2 if s > 1 else 1, dilation
            if s >= 3:
                dilation, stride = dilation * 2, 1
            blocks = [DilatedBottleneck(inplanes, planes, stride, first)]
            blocks += [DilatedBottleneck(planes * 4, planes, 1, dilation) for _ in range(depth - 1)]
            inplanes = planes * 4
            self.add_module(f"layer{s}", nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class FCNResNet50(nn.Module):
    """FCN: the dilated backbone, a head (3x3 conv, batchnorm, ReLU, dropout, 1x1 conv to the
    classes), class scores upsampled bilinearly to the input size."""

    def __init__(self, num_classes: int = 21, depths: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.backbone = DilatedResNet50(depths)
        self.classifier = nn.Sequential(nn.Conv2d(2048, 512, 3, padding=1, bias=False), nn.BatchNorm2d(512),
                                        nn.ReLU(), nn.Dropout(0.1), nn.Conv2d(512, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.classifier(self.backbone(x))
        return nn.functional.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ChannelsFirstLayerNorm(nn.Module):
    """Layer normalisation over the channels of [batch, chan, h, w], at every position."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GnConv(nn.Module):
    """g^n Conv: p0 and q0..q(n-1) from a 1x1 conv (the q's through a 7x7 depthwise conv, scaled by s),
    channels dim / 2^(n-1) doubling to dim; p(k+1) = pws[k](pk * qk); out: proj_out(p(n-1) * q(n-1))."""

    def __init__(self, dim: int, order: int, s: float = 1.0 / 3):
        super().__init__()
        self.dims = [dim // 2 ** i for i in range(order)][::-1]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        self.dwconv = nn.Conv2d(sum(self.dims), sum(self.dims), 7, padding=3, groups=sum(self.dims))
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1))
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q = torch.split(self.proj_in(x), (self.dims[0], sum(self.dims)), dim=1)
        gates = torch.split(self.dwconv(q) * self.s, self.dims, dim=1)
        p = p * gates[0]
        for pw, gate in zip(self.pws, gates[1:]):
            p = pw(p) * gate
        return self.proj_out(p)


class HorBlock(nn.Module):
    def __init__(self, dim: int, order: int, layer_scale: float = 1e-6):
        super().__init__()
        self.norm1 = ChannelsFirstLayerNorm(dim)
        self.gnconv = GnConv(dim, order)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma1 = nn.Parameter(layer_scale * torch.ones(dim))
        self.gamma2 = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.gamma1[:, None, None] * self.gnconv(self.norm1(x))
        y = self.pwconv2(nn.functional.gelu(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        return x + (self.gamma2 * y).permute(0, 3, 1, 2)


class HorNet(nn.Module):
    """HorNet (Rao et al. 2022); the defaults are HorNet-T with 7x7 g^n Conv."""

    def __init__(self, dim: int = 64, depths: tuple[int, ...] = (2, 3, 18, 2), orders: tuple[int, ...] = (2, 3, 4, 5),
                 num_classes: int = 1000):
        super().__init__()
        widths = [dim * 2 ** i for i in range(4)]
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dim, 4, 4), ChannelsFirstLayerNorm(dim))]
            + [nn.Sequential(ChannelsFirstLayerNorm(widths[i - 1]), nn.Conv2d(widths[i - 1], widths[i], 2, 2))
               for i in range(1, 4)])
        self.stages = nn.ModuleList(nn.Sequential(*[HorBlock(widths[i], orders[i]) for _ in range(depths[i])])
                                    for i in range(4))
        self.norm = nn.LayerNorm(widths[3], eps=1e-6)
        self.head = nn.Linear(widths[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean(dim=(2, 3))))


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """[B, H, W, C] -> [B, windows, ws * ws, C], windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_reverse(x: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    b, _, _, c = x.shape
    x = x.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class WindowAttention(nn.Module):
    """Multi-head self-attention within each window, with a relative position bias: a learned table of
    (2ws - 1)^2 entries per head, read at relative_position_index[i, j] for tokens i, j of a window."""

    def __init__(self, dim: int, heads: int, ws: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)   # [N, N, 2], from 0
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:  # x: [B, nW, N, C]
        b, nw, n, c = x.shape
        q, k, v = self.qkv(x).view(b, nw, n, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5)
        attn = (q * self.scale) @ k.transpose(-2, -1)                                # [B, nW, heads, N, N]
        attn = attn + self.relative_position_bias_table[self.relative_position_index].permute(2, 0, 1)
        if mask is not None:
            attn = attn + mask[:, None]
        x = (attn.softmax(dim=-1) @ v).transpose(2, 3).reshape(b, nw, n, c)
        return self.proj(x)


def shifted_window_mask(h: int, w: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """The paper's mask: label the regions of the rolled map (three slices per axis), then -100 between
    tokens of a window whose labels differ. [windows, N, N]."""
    labels = torch.zeros(1, h, w, 1, device=device)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            labels[:, rows, cols, :] = 3 * i + j
    windows = window_partition(labels, ws)[0, :, :, 0]                          # [nW, N]
    differ = windows[:, None, :] != windows[:, :, None]
    return torch.zeros(differ.shape, device=device).masked_fill(differ, -100.0)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ws: int = 7, shift: int = 0, mlp_ratio: int = 4):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, ws)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, mlp_ratio * dim))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, H, W, C]
        _, h, w, _ = x.shape
        y, mask = self.norm1(x), None
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
            mask = shifted_window_mask(h, w, self.ws, self.shift, x.device)
        y = window_reverse(self.attn(window_partition(y, self.ws), mask), self.ws, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class SwinStage(nn.Module):
    """Blocks alternating window and shifted-window attention; the defaults are Swin-T's first stage."""

    def __init__(self, dim: int = 96, heads: int = 3, depth: int = 2, ws: int = 7):
        super().__init__()
        self.blocks = nn.Sequential(*[SwinBlock(dim, heads, ws, ws // 2 if i % 2 else 0) for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)
