"""Common corruptions (Hendrycks & Dietterich 2019), in torch, batched, deterministic given a seed.

The severities' constants are those of ImageNet-C as packaged for images of any size by
``imagecorruptions`` (Michaelis et al. 2019), the setting of the reference study (224 px).
Why not that package: its 1.1.2 release (the latest) calls ``np.float_`` (gone in numpy 2),
skimage's removed ``multichannel=`` and scipy's removed ``scipy.ndimage.interpolation``, needs
OpenCV, and works one uint8 HWC image at a time. Here every corruption takes a float batch
``[B, C, H, W]`` in [0, 1] and one ``torch.Generator`` per image, so the result of an image
depends only on the seed, its index and the type, never on the batch it was in.

Known, small departures (documented, not hidden): pixelate's down-sampling averages over
integer bins (``adaptive_avg_pool2d``) where PIL's BOX filter weights partial pixels;
boundary handling uses torch's padding modes (reflect-101 for the blurs, as OpenCV's default;
reflection for the elastic warp). JPEG goes through Pillow's encoder on the uint8 image, as ImageNet-C.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .corruption_names import ALL_TYPES, STUDY_TYPES  # noqa: E402 - names only, importable without torch

Generators = Sequence[torch.Generator]


def _severity(values: Sequence, severity: int):
    if not 1 <= severity <= 5:
        raise ValueError(f"severity={severity}: must be an integer from 1 to 5")
    return values[severity - 1]


def _per_image(x: torch.Tensor, gens: Generators, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    return torch.stack([draw(g) for g in gens]).to(x.device)


# ----------------------------------------------------------------------------- noise


def gaussian_noise(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    c = _severity([0.08, 0.12, 0.18, 0.26, 0.38], severity)
    noise = _per_image(x, gens, lambda g: torch.randn(x.shape[1:], generator=g))
    return (x + c * noise).clamp(0, 1)


def shot_noise(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    c = _severity([60, 25, 12, 5, 3], severity)
    rates = x.detach().cpu() * c
    out = torch.stack([torch.poisson(r, generator=g) for r, g in zip(rates, gens)]) / c
    return out.to(x.device).clamp(0, 1)


def impulse_noise(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    """Salt and pepper: each value replaced with probability ``c``, by 1 or 0 with equal odds."""
    c = _severity([0.03, 0.06, 0.09, 0.17, 0.27], severity)
    u = _per_image(x, gens, lambda g: torch.rand((2, *x.shape[1:]), generator=g))
    hit, salt = u[:, 0] < c, u[:, 1] < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


# ----------------------------------------------------------------------------- blur helpers


def _conv_per_channel(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel with a 2-D kernel (odd size), borders reflected as OpenCV's default."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    padded = F.pad(x, (pw, pw, ph, ph), mode=mode)
    c = x.shape[1]
    weight = kernel.to(x).expand(c, 1, kh, kw)
    return F.conv2d(padded, weight, groups=c)


def _gaussian_1d(sigma: float, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return (k / k.sum()).float()


def _disk(radius: float, alias_blur: float) -> torch.Tensor:
    """ImageNet-C's anti-aliased disk: a normalised disk, Gaussian-blurred (3×3, or 5×5 past radius 8)."""
    half = 8 if radius <= 8 else int(radius)
    ksize = 3 if radius <= 8 else 5
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).double()
    disk /= disk.sum()
    g = _gaussian_1d(alias_blur, ksize // 2).double()
    blurred = F.conv2d(F.pad(disk[None, None], (ksize // 2,) * 4, mode="reflect"), (g[:, None] * g[None, :])[None, None])
    return blurred[0, 0].float()


def _shift(img: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``img[..., y - dy, x - dx]`` with the edge values repeated beyond the border."""
    h, w = img.shape[-2:]
    rows = (torch.arange(h, device=img.device) - dy).clamp(0, h - 1)
    cols = (torch.arange(w, device=img.device) - dx).clamp(0, w - 1)
    return img[..., rows, :][..., cols]


def _motion_blur_one(img: torch.Tensor, radius: int, sigma: float, angle: float) -> torch.Tensor:
    """A one-sided Gaussian-weighted sum of copies shifted along ``angle`` (degrees), as ImageNet-C's."""
    width = 2 * radius + 1
    t = torch.arange(width, dtype=torch.float64)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).tolist()
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    for i, k in enumerate(kernel):
        dy = -math.ceil(i * sin - 0.5)
        dx = -math.ceil(i * cos - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break
        out += k * _shift(img, dx, dy)
    return out


def _clipped_zoom(img: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom into the centre by ``factor`` (bilinear), cropped back to the input size."""
    h, w = img.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = img[..., top:top + ch, left:left + cw]
    size = (max(h, round(ch * factor)), max(w, round(cw * factor)))
    zoomed = F.interpolate(crop if crop.dim() == 4 else crop[None], size=size, mode="bilinear", align_corners=True)
    zoomed = zoomed if crop.dim() == 4 else zoomed[0]
    return zoomed[..., :h, :w]


# ----------------------------------------------------------------------------- blur


def defocus_blur(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    radius, alias = _severity([(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)], severity)
    return _conv_per_channel(x, _disk(radius, alias)).clamp(0, 1)


def motion_blur(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    radius, sigma = _severity([(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)], severity)
    angles = [float(torch.empty(()).uniform_(-45, 45, generator=g)) for g in gens]
    return torch.stack([_motion_blur_one(img, radius, sigma, a) for img, a in zip(x, angles)]).clamp(0, 1)


#: The zoom factors of each severity, exactly as ImageNet-C's ``np.arange`` calls produce them.
ZOOMS = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02), np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)]


def zoom_blur(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    factors = _severity(ZOOMS, severity)
    out = x.clone()
    for z in factors:
        out += _clipped_zoom(x, float(z))
    return (out / (len(factors) + 1)).clamp(0, 1)


# ----------------------------------------------------------------------------- weather and digital


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def snow(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    loc, scale, zoom, threshold, radius, sigma, blend = _severity(
        [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
         (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)], severity)
    h, w = x.shape[-2:]
    layers = []
    for g in gens:
        layer = torch.randn((1, h, w), generator=g) * scale + loc
        layer = _clipped_zoom(layer, zoom)
        layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
        angle = float(torch.empty(()).uniform_(-135, -45, generator=g))
        layer = _motion_blur_one(layer, radius, sigma, angle)
        layers.append(torch.round(layer * 255) / 255)
    layer = torch.stack(layers).to(x)
    x = blend * x + (1 - blend) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return (x + layer + torch.rot90(layer, 2, dims=(-2, -1))).clamp(0, 1)


def brightness(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    """Add ``c`` to the HSV value: hue and saturation kept, so RGB scales by V'/V (grey where V = 0)."""
    c = _severity([0.1, 0.2, 0.3, 0.4, 0.5], severity)
    if x.shape[1] == 1:
        return (x + c).clamp(0, 1)
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x)).clamp(0, 1)


def contrast(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    c = _severity([0.4, 0.3, 0.2, 0.1, 0.05], severity)
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def elastic_transform(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    """Smooth random displacement fields (σ = 1% of the size, amplitude ``alpha``), bilinear resampling."""
    alpha = _severity([250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12], severity)
    b, _, h, w = x.shape
    max_d = h * 0.005
    sig_h, sig_w = h * 0.01, w * 0.01
    kh = _gaussian_1d(sig_h, max(1, int(3 * sig_h + 0.5)))
    kw = _gaussian_1d(sig_w, max(1, int(3 * sig_w + 0.5)))
    fields = torch.stack([torch.empty((2, h, w)).uniform_(-max_d, max_d, generator=g) for g in gens])
    fields = _conv_per_channel(fields, kh[:, None] * kw[None, :]) * alpha  # [B, 2, H, W]: dx, dy in pixels
    fields = fields.to(x)
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype), torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    gx = (xs + fields[:, 0]) / max(w - 1, 1) * 2 - 1
    gy = (ys + fields[:, 1]) / max(h - 1, 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True).clamp(0, 1)


def pixelate(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    c = _severity([0.6, 0.5, 0.4, 0.3, 0.25], severity)
    h, w = x.shape[-2:]
    small = F.adaptive_avg_pool2d(x, (max(1, int(h * c)), max(1, int(w * c))))
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def _jpeg_one(img: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image

    array = img.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer)).copy()
    out = torch.from_numpy(decoded)
    return out[None] if out.dim() == 2 else out.permute(2, 0, 1)


def jpeg_compression(x: torch.Tensor, severity: int, gens: Generators) -> torch.Tensor:
    """Encode and decode with Pillow's libjpeg at ImageNet-C's quality (on the uint8 image)."""
    quality = _severity([25, 18, 15, 10, 7], severity)
    images = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    decoded = [_jpeg_one(img, quality) for img in images]
    return (torch.stack(decoded).float() / 255).to(x.device)


CORRUPTIONS: dict[str, Callable[[torch.Tensor, int, Generators], torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
assert tuple(CORRUPTIONS) == ALL_TYPES


def image_generators(seed: int, index: Sequence[int] | torch.Tensor, corruption: str) -> list[torch.Generator]:
    """One CPU generator per image, seeded by (seed, the image's index in the test set, the type)."""
    salt = ALL_TYPES.index(corruption)
    out = []
    for i in (index.tolist() if isinstance(index, torch.Tensor) else index):
        g = torch.Generator()
        g.manual_seed((int(seed) * 1_000_003 + int(i)) * 31 + salt)
        out.append(g)
    return out


def corrupt(x: torch.Tensor, corruption: str, severity: int, *, seed: int = 0, index: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """Corrupt a batch of images in [0, 1] (``[B, C, H, W]``); ``index`` are the images' positions in the test set.

    The same (seed, index, corruption, severity) always gives the same image, whatever the batch.
    """
    if corruption not in CORRUPTIONS:
        from ..errors import UnknownNameError

        raise UnknownNameError("corruption", corruption, ALL_TYPES)
    if x.dim() != 4:
        raise ValueError(f"expected a batch [B, C, H, W], got shape {tuple(x.shape)}")
    if index is None:
        index = range(len(x))
    gens = image_generators(seed, index, corruption)
    with torch.no_grad():
        return CORRUPTIONS[corruption](x.float(), severity, gens)
