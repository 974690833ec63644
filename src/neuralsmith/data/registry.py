"""Named sources, and :func:`load`: the one entry point from a name or path to a :class:`Dataset`.

A source is a registered name (:func:`list_sources`), a folder of the four MNIST-format IDX
files, an ``.npz`` with ``x_train, y_train, x_test, y_test``, or any of these followed by a
variation suffix (``-rot``, ``-bg-rand``, ``-bg-img``, ``-rot-bg-img``).

Data read from files is cached as ``.npy`` keyed by the files' fingerprint, and generated
data by its parameters (see :mod:`.cache`), so loading is fast after the first time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from neuralsmith.data.arrays import ImageSet
from neuralsmith.data.cache import cached, fingerprint
from neuralsmith.data.dataset import BINARIZATIONS, Dataset, binarize as _binarize, split_validation
from neuralsmith.data.idx import idx_files, read_idx_folder
from neuralsmith.limits import check_fits, memory_limit
from neuralsmith.data.npz import read_npz
from neuralsmith.data.sources import REMOTE_SETS, find_local
from neuralsmith.data.synthetic import GENERATOR_VERSION, PAPER_SIZES, generate
from neuralsmith.data.variations import VARIATIONS, split_variation, vary

DATA_SEED = 0  # generated data and variations use this seed: every run sees the same data

Build = Callable[[], ImageSet]


@dataclass(frozen=True)
class Source:
    """A registered source: how to build it, and its cache key (None: not cached)."""

    name: str
    kind: str
    description: str
    build: Build
    key: Callable[[], Optional[str]] = lambda: None


def _digits() -> ImageSet:
    """scikit-learn's bundled 8x8 digits (1797 images), 1/4 held out as test with seed 0."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    y = bunch.target.astype(np.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0)).numpy()
    test, train = perm[: len(y) // 4], perm[len(y) // 4:]
    return ImageSet(x[train], y[train], x[test], y[test], n_classes=10, name="digits",
                    source="sklearn.datasets.load_digits")


def _idx_source(name: str) -> Source:
    def build(max_bytes: Optional[int] = None) -> ImageSet:
        return read_idx_folder(find_local(name), name=name, n_classes=REMOTE_SETS[name].n_classes,
                               max_bytes=max_bytes)

    def key() -> str:
        return f"idx {name}\n" + fingerprint(idx_files(find_local(name)).values())

    return Source(name, "idx", REMOTE_SETS[name].description, build, key)


def _synthetic_source(name: str, description: str) -> Source:
    n_train, n_test = PAPER_SIZES[name]
    return Source(name, "synthetic", f"{description}, {n_train}/{n_test} (Larochelle et al., 2007)",
                  lambda: generate(name, seed=DATA_SEED),
                  lambda: f"synthetic {name} {n_train} {n_test} seed {DATA_SEED} "
                          f"v{GENERATOR_VERSION}")


SOURCES: dict[str, Source] = {
    "digits": Source("digits", "built-in", "scikit-learn's 8x8 digits, 1348/449, 10 classes",
                     _digits),
    **{name: _idx_source(name) for name in REMOTE_SETS},
    "rectangles": _synthetic_source("rectangles", "tall vs wide rectangle outlines, 28x28"),
    "rectangles-image": _synthetic_source("rectangles-image",
                                          "tall vs wide image-patch rectangles, 28x28"),
    "convex": _synthetic_source("convex", "convex vs non-convex pixel sets, 28x28"),
}


def list_sources() -> list[str]:
    """Names of the registered sources (any of them also takes a variation suffix)."""
    return sorted(SOURCES)


def catalog() -> list[dict]:
    """One record per registered source: name, kind, description, and whether it is here."""
    return [{"name": s.name, "kind": s.kind, "description": s.description,
             "available": _availability(s)} for s in sorted(SOURCES.values(), key=lambda s: s.name)]


def _availability(source: Source) -> str:
    if source.kind != "idx":
        return "built-in" if source.kind == "built-in" else "generated"
    try:
        return str(find_local(source.name))
    except FileNotFoundError:
        return f"no: neuralsmith data fetch {source.name}"


def resolve(source: str, *, max_bytes: Optional[int] = None) -> tuple[Build, Optional[str]]:
    """How to build ``source`` and its cache key: a registered name, an existing IDX folder or
    .npz, or one of those with a variation suffix. Files are read under the memory limit
    ``max_bytes`` (see :mod:`.limits`).

    Raises:
        FileNotFoundError: for a path that does not exist (or a named set not found locally,
            when its key is computed).
        ValueError: for a file that is not an .npz, or an unknown name.
    """
    if source in SOURCES:
        found = SOURCES[source]
        build = partial(found.build, max_bytes=max_bytes) if found.kind == "idx" else found.build
        return build, found.key()
    path = Path(source).expanduser()
    if path.exists():
        return _path_source(path, max_bytes)
    split = split_variation(source)
    if split is not None and (split[0] in SOURCES or Path(split[0]).expanduser().exists()):
        return _variation_source(*split, max_bytes)
    if "/" in source or os.sep in source or source.endswith(".npz") or source[:1] in (".", "~"):
        raise FileNotFoundError(f"{source}: no such file or folder; --data takes a registered "
                                f"name, a folder of IDX files or an .npz file")
    raise ValueError(f"unknown data source {source!r}; known: {', '.join(list_sources())} (each "
                     f"optionally + {', '.join('-' + v for v in VARIATIONS)}), a folder of IDX "
                     f"files, or an .npz file")


def _path_source(path: Path, max_bytes: Optional[int]) -> tuple[Build, Optional[str]]:
    if path.is_dir():
        key = f"idx {path.resolve().name}\n" + fingerprint(idx_files(path).values())
        return partial(read_idx_folder, path, max_bytes=max_bytes), key
    if path.suffix == ".npz":
        return partial(read_npz, path, max_bytes=max_bytes), None  # npz loads fast as is; user files change often
    raise ValueError(f"{path}: a file but not an .npz; --data takes a registered name, a folder "
                     f"of IDX files, or an .npz with x_train, y_train, x_test, y_test")


def _variation_source(base: str, variation: str,
                      max_bytes: Optional[int]) -> tuple[Build, Optional[str]]:
    base_build, base_key = resolve(base, max_bytes=max_bytes)
    key = base_key and f"{base_key}\nvariation {variation} seed {DATA_SEED} v{GENERATOR_VERSION}"
    return (lambda: vary(base_build(), variation, seed=DATA_SEED)), key


def load_images(source: str, *, max_bytes: Optional[int] = None) -> ImageSet:
    """The raw :class:`ImageSet` of ``source`` (see :func:`resolve`), cached when possible."""
    build, key = resolve(source, max_bytes=max_bytes)
    return cached(key, build) if key is not None else build()


def load(source: str, *, binarize: str | None = None, validation: float = 0.0,
         seed: int = 0, max_bytes: int | None = None) -> Dataset:
    """Load a data set by registered name, IDX folder or .npz path, with an optional variation.

    A registered name wins over a folder of the same name in the working directory (write
    ``./NAME`` for the folder). Generated data (synthetic problems, variations) always uses
    ``DATA_SEED``, so every run sees the same images; ``seed`` drives only the validation
    split and stochastic binarization.

    Args:
        source: a registered name (see :func:`list_sources`), a folder of IDX files, an
            ``.npz`` file, or any of these + ``-rot``, ``-bg-rand``, ``-bg-img``, ``-rot-bg-img``.
        binarize: None, ``"threshold"`` or ``"stochastic"``.
        validation: fraction of train moved to a validation split (seeded).
        seed: seed for the split and stochastic binarization.
        max_bytes: refuse data whose arrays would need more memory (default:
            ``$NEURALSMITH_MAX_BYTES``, else the available memory).

    Returns:
        A :class:`Dataset`: float32 rows in [0, 1], int64 labels.

    Raises:
        FileNotFoundError: for a missing path or a named set not present locally (the message
            says how to get it).
        ValueError: for an unknown source, a bad file, data beyond the memory limit, or bad
            options.

    Example:
        >>> ds = load("digits", validation=0.1, binarize="threshold")
        >>> ds.x_train.shape[1], ds.x_valid.shape[0] > 0, ds.x_train.unique().tolist()
        (64, True, [0.0, 1.0])
    """
    if binarize is not None and binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {', '.join(BINARIZATIONS)}; got {binarize!r}")
    if not 0.0 <= validation < 1.0:
        raise ValueError(f"validation must be a fraction in [0, 1); got {validation}")
    memory_limit(max_bytes)  # a bad max_bytes or $NEURALSMITH_MAX_BYTES fails before loading
    images = load_images(source, max_bytes=max_bytes)
    rows = sum(getattr(images, k).size for k in ("x_train", "x_test"))
    check_fits(4 * rows + 8 * (len(images.y_train) + len(images.y_test)), source,
               "the float32 data set", max_bytes)
    ds = split_validation(images.to_dataset(), validation, seed)
    return _binarize(ds, binarize, seed) if binarize else ds


def info(source: str) -> dict:
    """The JSON summary of a source (see :meth:`Dataset.info`)."""
    return load(source).info()
