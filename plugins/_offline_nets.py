"""The torch classes of the built-in ``offline`` plugin (see :mod:`rftbench_plugins.offline`), imported on first use."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from rftbench.model import Normalize


class LabelledTensors(TensorDataset):
    """Images (N, C, H, W) in [0, 1] and int labels, with ``targets`` and ``classes`` like torchvision's."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]):
        super().__init__(images, labels)
        self.targets = labels.tolist()
        self.classes = list(classes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.tensors[0][index], int(self.tensors[1][index])


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN layers and an identity (or 1×1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Identity() if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class MiniResNet(nn.Module):
    """A small ResNet for 32 px images: a 3×3 stem, then stages of basic blocks (strides 1, 2, 2…).

    Takes images in [0, 1] (normalised inside); ``forward_features`` returns the globally
    average-pooled output of the last stage (``num_features`` = the last width). The stages are
    the blocks partial-k fine-tuning counts.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), depths: tuple[int, ...] = (1, 1, 1),
                 mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25)):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, cin = [], widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths)):
            blocks = [BasicBlock(cin if j == 0 else width, width, (1 if i == 0 else 2) if j == 0 else 1) for j in range(depth)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.num_features = widths[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(self.normalize(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class MiniConvNeXt(nn.Module):
    """A small ConvNeXt for 32 px images: timm's ``ConvNeXt`` with a 2×2 patch stem and four stages (16, 8, 4, 2 px).

    (timm's ``ConvNeXt`` also downsamples in its first stage when the stem's stride is 2, which
    would run the stages at 8, 4, 2 and 1 px — the last stage's 7×7 depthwise convolution seeing a
    single pixel. That downsampling is removed here; weights of the older layout do not load.)

    Takes images in [0, 1] (normalised inside); ``forward_features`` returns the globally
    average-pooled, normed output of the last stage (``num_features`` = the last width). No layer
    scale (``ls_init_value=None``): the short pretraining budgets train faster without it. Its
    ``stages`` are what partial-k fine-tuning counts.
    """

    def __init__(self, dims: tuple[int, ...] = (16, 32, 64, 128), depths: tuple[int, ...] = (1, 1, 1, 1),
                 mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25)):
        super().__init__()
        from timm.models.convnext import ConvNeXt

        self.normalize = Normalize(mean, std)
        self.convnext = ConvNeXt(num_classes=0, depths=depths, dims=dims, patch_size=2, ls_init_value=None)
        self.convnext.stages[0].downsample = nn.Identity()  # stage 0 at the stem's 16 px (same width: nothing to project)
        self.num_features = dims[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.convnext(self.normalize(x))  # num_classes=0: pooled and normed features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class MiniViT(nn.Module):
    """A small vision transformer for 32 px images: timm's ``VisionTransformer`` with 4×4 patches (64 tokens).

    No class token: ``forward_features`` returns the tokens' average after the last block, layer-normed
    (timm's ``global_pool="avg"`` with its ``fc_norm``; ``num_features`` = the width). Pre-norm blocks
    with learned position embeddings, as in ViT/DeiT. Its ``blocks`` are what partial-k fine-tuning
    counts, and LoRA's default targets are timm's ``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``.
    """

    def __init__(self, dim: int = 48, depth: int = 4, heads: int = 3, patch_size: int = 4,
                 mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25)):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.normalize = Normalize(mean, std)
        self.vit = VisionTransformer(img_size=32, patch_size=patch_size, embed_dim=dim, depth=depth, num_heads=heads,
                                     mlp_ratio=4.0, num_classes=0, global_pool="avg", class_token=False)
        self.num_features = dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(self.normalize(x))  # num_classes=0: pooled and normed tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
