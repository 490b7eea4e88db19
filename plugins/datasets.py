"""Built-in plugin ``datasets``: dataset sources for the zoo's downstream tasks, with the study's split rules.

Sources (a dataset card's ``source``):

``torchvision``
    a ``torchvision.datasets`` class (``args.class``) built once per official part
    (``args.official``: part name → constructor keywords, e.g. ``{train: {split: train}}``);
    torchvision downloads it where it can (``download=True``) and reads its own layout.
``imagefolder``
    a folder of ``<class>/<image>`` (``args.folder`` under the data root, or one folder per
    official part), read by ``torchvision.datasets.ImageFolder``; ``args.url`` is an archive
    that ``download_and_extract_archive`` fetches and unpacks (e.g. UC Merced Land Use).
``cub200``
    Caltech-UCSD Birds-200-2011 in its official layout (``CUB_200_2011/images.txt``,
    ``image_class_labels.txt``, ``train_test_split.txt``, ``classes.txt``, ``images/``).
``stanford_dogs``
    Stanford Dogs in its official layout (``Images/<wnid-breed>/*.jpg`` and the
    ``train_list.mat`` / ``test_list.mat`` of ``lists.tar``).

No ``hf`` (Hugging Face ``datasets``) source: every dataset the zoo needs has an official
archive or a torchvision class, and the ``datasets`` package (with pyarrow and its cache)
would be a heavy dependency for none of them.

**Split rules** (``card.splits``; deterministic given the source's ``seed``):

- ``official``: the part of the same name (``args.official``);
- ``carved``: a stratified ``fraction`` taken out of the ``train`` part (``args.carve_from``
  to change it); the train split keeps the rest;
- ``stratified``: all official parts pooled, then split stratified by class: each
  stratified split takes its ``fraction`` of the pool, one split may leave ``fraction``
  unset and take the remainder;
- ``size``: then an optional stratified subsample of that many images (the study's 1,000
  test images), applied when the source's ``subsample`` parameter is true (the default).

Every split is a :class:`Split`: ``(image, label)`` items (PIL images as the source reads
them), with ``targets`` and ``classes`` attributes.
"""

from __future__ import annotations

from pydantic import Field

from rftbench import DatasetSourceSpec, Params, hookimpl
from rftbench._lazy import forward_to
from rftbench.errors import DatasetError, RftbenchError  # noqa: F401 - DatasetError: importable from here as before
from rftbench.specs import lazy


class SourceParams(Params):
    seed: int = Field(0, ge=0, description="seed of the stratified/carved splits and subsamples")
    subsample: bool = Field(True, description="apply the card's stratified subsample sizes (e.g. the study's 1,000 test images)")


# The loaders (and torch, torchvision, numpy) are imported when a dataset is loaded, not when plugins are listed.
load_torchvision = lazy("rftbench_plugins._datasets:load_torchvision")
load_imagefolder = lazy("rftbench_plugins._datasets:load_imagefolder")
load_cub200 = lazy("rftbench_plugins._datasets:load_cub200")
load_stanford_dogs = lazy("rftbench_plugins._datasets:load_stanford_dogs")


@hookimpl
def rftbench_add_dataset_sources() -> list[DatasetSourceSpec]:
    return [
        DatasetSourceSpec(name="torchvision", params=SourceParams, factory=load_torchvision,
                          description="torchvision.datasets classes (CIFAR, SVHN, STL-10, Flowers-102, Aircraft, Pets, Cars, Caltech)"),
        DatasetSourceSpec(name="imagefolder", params=SourceParams, factory=load_imagefolder,
                          description="<class>/<image> folders, optionally downloaded as an archive (UC Merced Land Use, your own data)"),
        DatasetSourceSpec(name="cub200", params=SourceParams, factory=load_cub200,
                          description="Caltech-UCSD Birds-200-2011 in its official layout"),
        DatasetSourceSpec(name="stanford_dogs", params=SourceParams, factory=load_stanford_dogs,
                          description="Stanford Dogs in its official layout (Images/ and the .mat split lists)"),
    ]


#: Everything else (``make_splits``, ``Split``, …) lives in :mod:`rftbench_plugins._datasets`.
__getattr__ = forward_to("rftbench_plugins._datasets")

__all__ = ["DatasetError", "Split", "load_cub200", "load_imagefolder", "load_stanford_dogs", "load_torchvision", "make_splits"]
