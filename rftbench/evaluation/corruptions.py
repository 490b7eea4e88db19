"""Common corruptions (Hendrycks & Dietterich 2019), in torch, batched, deterministic given a seed.

The reference is PyPI ``imagecorruptions`` 1.1.2 (Michaelis et al. 2019: ImageNet-C's code for
images of any size), the setting of the reference study (224 px). rftbench does not call it: its
1.1.2 release (the latest) needs numpy < 2 (``np.float_``), scikit-image < 0.21
(``multichannel=``), scipy < 1.12 (``scipy.ndimage.interpolation``) and OpenCV, and works one
uint8 HWC image at a time. Here every corruption takes a float batch ``[B, C, H, W]`` in [0, 1]
and one source of random draws per image, so an image's result depends only on the seed, its
index and the type, never on the batch it was in.

What matches the reference, and how closely (golden fixtures from imagecorruptions 1.1.2 in
``tests/golden/``, checked by ``tests/test_golden.py``; regenerate with
``scripts/make_golden_fixtures.sh``): with the reference's random draws replayed
(:class:`NumpyDraws`), every type at every severity, on RGB images of 32 and 64 px, is within one
8-bit level of the reference on every pixel. The differences that remain are float32 against
float64 arithmetic landing on the other side of an 8-bit truncation. In detail:

- outputs are 8-bit by default (``quantize=True``), as the reference's ``np.uint8(…)``:
  truncation of ``255·value`` (pixelate and JPEG round, as Pillow does); ``quantize=False``
  keeps floats;
- ``pixelate``: Pillow's BOX down-sampling (each input pixel, weight 1, to the one output bin
  holding its centre; horizontal pass, then vertical, each rounded to 8 bits) and Pillow's
  NEAREST up-sampling (its accumulated source coordinates, ties included);
- ``snow``: the zoomed snow layer is motion-blurred before it is cropped to the image;
- ``elastic_transform``: the displacement fields are smoothed as skimage's
  ``gaussian(mode="reflect", truncate=3)`` (the edge pixel repeated) and the image sampled as
  scipy's ``map_coordinates(order=1, mode="reflect")`` (reflection about the outer pixel edges);
- the blurs pad as OpenCV's default (reflect-101); JPEG goes through Pillow's encoder.

Random draws: by default each image gets its own ``torch.Generator`` (:class:`TorchDraws`), so
the random fields are torch's, not numpy's — the same distributions, not the same samples.
Passing :class:`NumpyDraws` replays the reference's own numpy draws (``np.random.seed(s)``
before a call of ``imagecorruptions.corrupt``; skimage's ``random_noise(seed=s)`` for impulse
noise). Inputs are used as they are: the reference takes uint8 images, so give images on the
8-bit grid (as decoded files are) to compare with it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .corruption_names import ALL_TYPES, STUDY_TYPES  # noqa: E402 - names only, importable without torch


# ----------------------------------------------------------------------------- random draws


class Draws(Protocol):
    """One image's source of random draws; shapes are ``(C, H, W)`` or ``(H, W)``, results CPU tensors."""

    def normal(self, shape: tuple[int, ...], loc: float, scale: float) -> torch.Tensor: ...

    def uniform(self, low: float, high: float, shape: tuple[int, ...] | None = None) -> torch.Tensor | float: ...

    def poisson(self, rates: torch.Tensor) -> torch.Tensor: ...

    def bernoulli(self, p: float, shape: tuple[int, ...]) -> torch.Tensor: ...


class TorchDraws:
    """Draws from one ``torch.Generator`` (the default: one per image, seeded by seed, index and type)."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def normal(self, shape: tuple[int, ...], loc: float, scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator) * scale + loc

    def uniform(self, low: float, high: float, shape: tuple[int, ...] | None = None) -> torch.Tensor | float:
        out = torch.empty(() if shape is None else shape).uniform_(low, high, generator=self.generator)
        return float(out) if shape is None else out

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        return torch.poisson(rates.float(), generator=self.generator)

    def bernoulli(self, p: float, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator) <= p


def _hwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def _chw(array: np.ndarray) -> torch.Tensor:
    out = torch.from_numpy(np.ascontiguousarray(array))
    return out.permute(2, 0, 1) if out.dim() == 3 else out


class NumpyDraws:
    """The draws ``imagecorruptions`` 1.1.2 makes after ``np.random.seed(seed)``, in its order and layout.

    Legacy ``RandomState(seed)`` for every type (its streams are frozen across numpy versions);
    for impulse noise, a ``default_rng(seed)`` as skimage's ``random_noise(…, seed=seed)``.
    Arrays are drawn channels-last (the reference's HWC) and returned ``(C, H, W)``.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.state = np.random.RandomState(self.seed)
        self._generator: np.random.Generator | None = None

    def normal(self, shape: tuple[int, ...], loc: float, scale: float) -> torch.Tensor:
        return _chw(self.state.normal(size=_hwc(shape), loc=loc, scale=scale))

    def uniform(self, low: float, high: float, shape: tuple[int, ...] | None = None) -> torch.Tensor | float:
        if shape is None:
            return float(self.state.uniform(low, high))
        return _chw(self.state.uniform(low, high, size=_hwc(shape)))

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        lam = rates.double().numpy()
        return _chw(self.state.poisson(np.moveaxis(lam, 0, -1) if lam.ndim == 3 else lam).astype(np.float64))

    def bernoulli(self, p: float, shape: tuple[int, ...]) -> torch.Tensor:
        if self._generator is None:
            self._generator = np.random.default_rng(self.seed)
        return _chw(self._generator.random(_hwc(shape)) <= p)


def _severity(values: Sequence, severity: int):
    if not 1 <= severity <= 5:
        raise ValueError(f"severity={severity}: must be an integer from 1 to 5")
    return values[severity - 1]


def _stack(x: torch.Tensor, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(parts)).to(device=x.device, dtype=x.dtype)


def _truncate8(x: torch.Tensor) -> torch.Tensor:
    """The reference's ``np.uint8(255·value)`` for values in [0, 1], back on the [0, 1] scale."""
    return torch.floor(x.clamp(0, 1) * 255) / 255


def _round8(x: torch.Tensor) -> torch.Tensor:
    """Pillow's rounding of a resampled 8-bit value (half up)."""
    return torch.floor(x.clamp(0, 1) * 255 + 0.5) / 255


# ----------------------------------------------------------------------------- noise


def gaussian_noise(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    c = _severity([0.08, 0.12, 0.18, 0.26, 0.38], severity)
    noise = _stack(x, [d.normal(tuple(x.shape[1:]), 0.0, c) for d in draws])
    return (x + noise).clamp(0, 1)


def shot_noise(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    """Poisson noise as imagecorruptions: rates ``(uint8 / 255.) * c`` in float64, as the reference
    computes them (in float32 numpy's sampler draws differently for some rates: up to 255 levels off)."""
    c = _severity([60, 25, 12, 5, 3], severity)
    values = x.detach().cpu().double()
    levels = torch.round(values * 255)
    on_grid = bool(((values - levels / 255).abs() <= 1e-6).all())  # an 8-bit image: recover its exact k / 255.
    rates = (levels / 255 if on_grid else values) * c
    return (_stack(x, [d.poisson(r) for r, d in zip(rates, draws)]) / c).clamp(0, 1)


def impulse_noise(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    """Salt and pepper as skimage's ``random_noise(mode="s&p")``: a value is hit with probability ``c``, then 1 or 0 with equal odds."""
    c = _severity([0.03, 0.06, 0.09, 0.17, 0.27], severity)
    shape = tuple(x.shape[1:])
    hit, salt = [], []
    for d in draws:
        hit.append(d.bernoulli(c, shape))
        salt.append(d.bernoulli(0.5, shape))
    hit_t, salt_t = torch.stack(hit).to(x.device), torch.stack(salt).to(x.device)
    return torch.where(hit_t, salt_t.to(x.dtype), x)


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
    """A one-sided Gaussian-weighted sum of copies shifted along ``angle`` (degrees), as the reference's ``_motion_blur``."""
    width = 2 * radius + 1
    t = torch.arange(width, dtype=torch.float64)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).tolist()
    point = (width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle)))
    hypot = math.hypot(*point)
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    for i, k in enumerate(kernel):
        dy = -math.ceil(i * point[0] / hypot - 0.5)
        dx = -math.ceil(i * point[1] / hypot - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break
        out += k * _shift(img, dx, dy)
    return out


def _zoom(img: torch.Tensor, factor: float) -> torch.Tensor:
    """The centre ``ceil(size/factor)`` crop zoomed by ``factor`` (bilinear, scipy ``zoom(order=1)``), not cropped back."""
    h, w = img.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = img[..., top:top + ch, left:left + cw]
    size = (max(h, round(ch * factor)), max(w, round(cw * factor)))
    zoomed = F.interpolate(crop if crop.dim() == 4 else crop[None], size=size, mode="bilinear", align_corners=True)
    # scipy's zoom (mode "constant") maps output index k to k·(n_in − 1)/(n_out − 1) in float64 and writes
    # cval 0 where that lands past the last input sample: the reference's last row or column can be black
    # (96×160 px at zoom 1.27: the last column). Reproduced here; a no-op for most sizes.
    for axis, (n_in, n_out) in ((-2, (ch, size[0])), (-1, (cw, size[1]))):
        if n_out > 1 and (n_out - 1) * ((n_in - 1) / (n_out - 1)) > n_in - 1:
            keep = torch.ones(n_out, dtype=zoomed.dtype, device=zoomed.device)
            keep[-1] = 0
            zoomed = zoomed * (keep.view(-1, 1) if axis == -2 else keep)
    return zoomed if crop.dim() == 4 else zoomed[0]


def _clipped_zoom(img: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom into the centre by ``factor``, cropped back to the input size."""
    h, w = img.shape[-2:]
    return _zoom(img, factor)[..., :h, :w]


# ----------------------------------------------------------------------------- blur


def defocus_blur(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    radius, alias = _severity([(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)], severity)
    return _conv_per_channel(x, _disk(radius, alias)).clamp(0, 1)


def motion_blur(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    radius, sigma = _severity([(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)], severity)
    angles = [float(d.uniform(-45, 45)) for d in draws]
    return torch.stack([_motion_blur_one(img, radius, sigma, a) for img, a in zip(x, angles)]).clamp(0, 1)


#: The zoom factors of each severity, exactly as ImageNet-C's ``np.arange`` calls produce them.
ZOOMS = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02), np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)]


def zoom_blur(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
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


def snow(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    """Snow flakes: a thresholded, zoomed noise layer, motion-blurred (before the crop, as the reference), over a brightened image."""
    loc, scale, zoom, threshold, radius, sigma, blend = _severity(
        [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
         (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)], severity)
    h, w = x.shape[-2:]
    layers = []
    for d in draws:
        layer = _zoom(d.normal((h, w), loc, scale).float()[None], zoom)
        layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
        layer = _motion_blur_one(layer, radius, sigma, float(d.uniform(-135, -45)))
        layers.append((torch.round(layer * 255) / 255)[..., :h, :w])
    layer = _stack(x, layers)
    x = blend * x + (1 - blend) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return (x + layer + torch.rot90(layer, 2, dims=(-2, -1))).clamp(0, 1)


def brightness(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    """Add ``c`` to the HSV value: hue and saturation kept, so RGB scales by V'/V (grey where V = 0)."""
    c = _severity([0.1, 0.2, 0.3, 0.4, 0.5], severity)
    if x.shape[1] == 1:
        return (x + c).clamp(0, 1)
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x)).clamp(0, 1)


def contrast(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    c = _severity([0.4, 0.3, 0.2, 0.1, 0.05], severity)
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def _symmetric_index(n: int, radius: int, device: torch.device | None = None) -> torch.Tensor:
    """Indices of ``[-radius, n + radius)`` folded back as scipy's ``reflect`` (d c b a | a b c d | d c b a)."""
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def _smooth_reflect(field: torch.Tensor, sigma: tuple[float, float], truncate: float = 3.0) -> torch.Tensor:
    """skimage ``gaussian(field, sigma, mode="reflect", truncate)`` of ``[B, H, W]`` fields (kernel in float64)."""
    out = field
    for dim, sd in ((-2, sigma[0]), (-1, sigma[1])):
        radius = int(truncate * sd + 0.5)
        if radius == 0:
            continue
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        kernel = torch.exp(-0.5 / sd**2 * t**2)
        kernel = (kernel / kernel.sum()).to(out.dtype)
        n = out.shape[dim]
        padded = out.index_select(dim, _symmetric_index(n, radius, out.device))
        if dim == -2:
            out = F.conv2d(padded[:, None], kernel.view(1, 1, -1, 1))[:, 0]
        else:
            out = F.conv2d(padded[:, None], kernel.view(1, 1, 1, -1))[:, 0]
    return out


def elastic_transform(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    """Smooth random displacement fields (σ = 1% of the size, amplitude ``alpha``), bilinear resampling reflected about the edges."""
    alpha = _severity([250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12], severity)
    b, _, h, w = x.shape
    max_d = h * 0.005
    raw = [(d.uniform(-max_d, max_d, (h, w)), d.uniform(-max_d, max_d, (h, w))) for d in draws]
    fields = torch.stack([torch.stack([dx, dy]) for dx, dy in raw]).float().view(b * 2, h, w).to(x.device)
    fields = (_smooth_reflect(fields, (h * 0.01, w * 0.01)) * alpha).view(b, 2, h, w)
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    # pixel coordinate p → grid (2p + 1)/n − 1 with align_corners=False: reflection about −0.5 and n − 0.5
    grid = torch.stack([(2 * (xs + fields[:, 0]) + 1) / w - 1, (2 * (ys + fields[:, 1]) + 1) / h - 1], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp(0, 1)


@lru_cache(maxsize=64)
def _box_bins(n: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pillow's BOX resampling from ``n`` to ``m`` pixels: the input pixels used, the bin of each
    (the one holding its centre), and the bin sizes. As in Pillow's double arithmetic, a pixel
    whose centre falls exactly on a bin edge can miss both bins (e.g. pixel 22 of 45 → 22)."""
    scale = n / m
    support = 0.5 * scale
    bins = torch.full((n,), -1, dtype=torch.long)
    for i in range(m):
        center = (i + 0.5) * scale
        for j in range(max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n)):
            if -0.5 < (j - center + 0.5) / scale <= 0.5:
                bins[j] = i
    used = torch.nonzero(bins >= 0).flatten()
    return used, bins[used], torch.bincount(bins[used], minlength=m).float()


def _box_last(x: torch.Tensor, m: int) -> torch.Tensor:
    """Box means of the last dimension into ``m`` bins."""
    used, bins, counts = _box_bins(x.shape[-1], m)
    if len(used) < x.shape[-1]:
        x = x.index_select(-1, used.to(x.device))
    sums = torch.zeros(*x.shape[:-1], m, dtype=x.dtype, device=x.device).index_add_(-1, bins.to(x.device), x)
    return sums / counts.to(x)


@lru_cache(maxsize=64)
def _nearest_index(n: int, m: int) -> torch.Tensor:
    """Source pixel of each of ``n`` outputs in Pillow's NEAREST resize from ``m`` (its accumulated coordinate)."""
    step, pos, out = m / n, (m / n) * 0.5, []
    for _ in range(n):
        out.append(min(int(pos), m - 1))
        pos += step
    return torch.tensor(out)


def pixelate(x: torch.Tensor, severity: int, draws: Sequence[Draws], *, quantize: bool = True) -> torch.Tensor:
    """Pillow's BOX down-sampling to ``int(c·size)`` then NEAREST up-sampling, as the reference (8-bit passes when ``quantize``)."""
    c = _severity([0.6, 0.5, 0.4, 0.3, 0.25], severity)
    h, w = x.shape[-2:]
    sh, sw = max(1, int(h * c)), max(1, int(w * c))
    finish = _round8 if quantize else (lambda t: t)
    small = finish(_box_last(x, sw))  # horizontal pass first, as Pillow
    small = finish(_box_last(small.transpose(-1, -2), sh).transpose(-1, -2))
    rows, cols = _nearest_index(h, sh).to(x.device), _nearest_index(w, sw).to(x.device)
    return small.index_select(-2, rows).index_select(-1, cols)


def _jpeg_one(img: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image

    array = img.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer)).copy()
    out = torch.from_numpy(decoded)
    return out[None] if out.dim() == 2 else out.permute(2, 0, 1)


def jpeg_compression(x: torch.Tensor, severity: int, draws: Sequence[Draws]) -> torch.Tensor:
    """Encode and decode with Pillow's libjpeg at ImageNet-C's quality (on the uint8 image)."""
    quality = _severity([25, 18, 15, 10, 7], severity)
    images = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    decoded = [_jpeg_one(img, quality) for img in images]
    return (torch.stack(decoded).float() / 255).to(x.device)


Corruption = Callable[[torch.Tensor, int, Sequence[Draws]], torch.Tensor]

CORRUPTIONS: dict[str, Corruption] = {
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


def image_seeds(seed: int, index: Sequence[int] | torch.Tensor, corruption: str) -> list[int]:
    """One seed per image, from (seed, the image's index in the test set, the type)."""
    salt = ALL_TYPES.index(corruption)
    indices = index.tolist() if isinstance(index, torch.Tensor) else index
    return [(int(seed) * 1_000_003 + int(i)) * 31 + salt for i in indices]


def image_generators(seed: int, index: Sequence[int] | torch.Tensor, corruption: str) -> list[torch.Generator]:
    """One CPU generator per image, seeded by :func:`image_seeds`."""
    return [torch.Generator().manual_seed(s) for s in image_seeds(seed, index, corruption)]


def corrupt(
    x: torch.Tensor,
    corruption: str,
    severity: int,
    *,
    seed: int = 0,
    index: Sequence[int] | torch.Tensor | None = None,
    quantize: bool = True,
    draws: Sequence[Draws] | None = None,
) -> torch.Tensor:
    """Corrupt a batch of images in [0, 1] (``[B, C, H, W]``); ``index`` are the images' positions in the test set.

    The same (seed, index, corruption, severity) always gives the same image, whatever the batch.
    ``quantize``: 8-bit output as the reference (``np.uint8`` truncation; Pillow's rounding for
    pixelate and JPEG), on the [0, 1] scale; ``False`` keeps floats. ``draws``: one source of
    random draws per image (e.g. :class:`NumpyDraws` to replay imagecorruptions'), instead of
    the per-image torch generators of ``seed`` and ``index``.
    """
    if corruption not in CORRUPTIONS:
        from ..errors import UnknownNameError

        raise UnknownNameError("corruption", corruption, ALL_TYPES)
    _severity(range(5), severity)
    if x.dim() != 4:
        raise ValueError(f"expected a batch [B, C, H, W], got shape {tuple(x.shape)}")
    if draws is None:
        draws = [TorchDraws(g) for g in image_generators(seed, range(len(x)) if index is None else index, corruption)]
    elif len(draws) != len(x):
        raise ValueError(f"draws: one source per image is needed ({len(x)} images, {len(draws)} sources)")
    fn = CORRUPTIONS[corruption]
    with torch.no_grad():
        if fn is pixelate:
            return pixelate(x.float(), severity, draws, quantize=quantize)
        out = fn(x.float(), severity, draws)
        return _truncate8(out) if quantize and fn is not jpeg_compression else out
