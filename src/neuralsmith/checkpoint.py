"""Checkpoints without pickle: tensors in safetensors, metadata in JSON, both written atomically.

A checkpoint named ``NAME`` in a folder is two files, ``NAME.safetensors`` and ``NAME.json``.
The JSON is written last, so a checkpoint whose JSON exists is complete.

A saved model (:func:`save_module`) is its ``state_dict`` plus JSON that holds its constructor
arguments under one key naming its kind (``{"rbm": {...}}``, ``{"classrbm": {...}}``,
``{"hybrid": {...}}``; a pre-trained stack writes ``{"kind": "dbn" | "sda", "sizes": ...}``);
:func:`load_module` checks that key and rebuilds the model.

Example:
    >>> import tempfile, torch
    >>> d = tempfile.mkdtemp()
    >>> _ = save(d, "epoch-1", {"w": torch.ones(2)}, {"epoch": 1})
    >>> tensors, meta = load(d, "epoch-1")
    >>> meta["epoch"], tensors["w"].tolist()
    (1, [1.0, 1.0])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from neuralsmith.runfolder import atomic_write_bytes, read_json, write_json

M = TypeVar("M", bound=nn.Module)


def save(folder: str | os.PathLike, name: str, tensors: Mapping[str, torch.Tensor],
         meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``tensors`` and ``meta`` as checkpoint ``name`` in ``folder``; return the JSON path."""
    folder = Path(folder)
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(folder / f"{name}.safetensors", st_save(flat))
    return write_json(folder / f"{name}.json", dict(meta or {}))


def load(folder: str | os.PathLike, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read checkpoint ``name`` from ``folder`` as ``(tensors, meta)``.

    Raises:
        FileNotFoundError: if either file is missing.
        ValueError: if the tensor file is not valid safetensors.
    """
    folder = Path(folder)
    meta = read_json(folder / f"{name}.json")
    path = folder / f"{name}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint tensors missing")
    try:
        tensors = st_load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a valid safetensors file ({exc}); the checkpoint is "
                         "damaged: write it again") from None
    return tensors, meta


def save_module(module: nn.Module, folder: str | os.PathLike, name: str,
                meta: Mapping[str, Any]) -> Path:
    """Write ``module.state_dict()`` and ``meta`` (its config under its kind's key) as ``name``.

    Returns:
        The path of the JSON file.
    """
    return save(folder, name, module.state_dict(), meta)


def load_module(folder: str | os.PathLike, name: str, key: str,
                build: Callable[[dict[str, Any], dict[str, torch.Tensor]], M], *,
                what: str, origin: str) -> tuple[M, dict[str, Any]]:
    """Read a model written by :func:`save_module` as ``(model, meta)``.

    ``build(meta, tensors)`` makes the empty model from the JSON that holds ``key``; the tensors
    are then loaded into it. A training checkpoint that keeps the model's tensors under
    ``KEY.`` (beside optimizer state) loads too.

    Args:
        key: the JSON entry a checkpoint of this kind holds (``"rbm"``, ``"classrbm"``, ...).
        what: the kind in words, for messages (``"RBM"``, ``"pre-trained stack"``).
        origin: what writes such checkpoints (``"`neuralsmith pretrain rbm --out RUN`"``).

    Raises:
        FileNotFoundError: if either file is missing.
        ValueError: if the JSON holds no ``key``, or the tensors are corrupt or do not fit.
    """
    folder = Path(folder)
    if not exists(folder, name):
        raise FileNotFoundError(f"{folder}: no {what} here (expected {name}.json and "
                                f"{name}.safetensors, written by {origin})")
    tensors, meta = load(folder, name)
    if key not in meta:
        raise ValueError(f"{folder / name}.json holds no {what} (no {key!r} entry); give a "
                         f"folder written by {origin}")
    tensors = _unprefixed(tensors, f"{key}.")
    check_finite(tensors, folder / f"{name}.safetensors", origin)
    return _build(build, meta, tensors, folder / name, origin), meta


def check_finite(tensors: Mapping[str, torch.Tensor], path: Path, origin: str) -> None:
    """Refuse a model whose floating-point tensors hold NaN or infinities (a diverged model).

    Raises:
        ValueError: naming the file and the first tensor that is not finite.
    """
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path}: tensor {key!r} holds NaN or infinite values (the model "
                             f"diverged or the file is damaged); train it again with {origin}")


def _unprefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` without it, if any are (a training checkpoint); else all."""
    if not any(k.startswith(prefix) for k in tensors):
        return tensors
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _build(build: Callable[[dict[str, Any], dict[str, torch.Tensor]], M], meta: dict[str, Any],
           tensors: dict[str, torch.Tensor], path: Path, origin: str) -> M:
    """``build(meta, tensors)`` with the tensors loaded; a mismatch raised as a ValueError."""
    try:
        model = build(meta, tensors)
        model.load_state_dict(tensors)
    except ValueError as exc:  # the config itself is refused: say which file holds it
        raise ValueError(f"{path}.json: {exc}") from None
    except (KeyError, TypeError, RuntimeError) as exc:
        why = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
        raise ValueError(f"{path}.safetensors does not fit the model {path.name}.json describes "
                         f"({why}); the checkpoint is damaged or from another version: write it "
                         f"again with {origin}") from None
    return model


def exists(folder: str | os.PathLike, name: str) -> bool:
    """Whether a complete checkpoint ``name`` is in ``folder``."""
    folder = Path(folder)
    return (folder / f"{name}.json").is_file() and (folder / f"{name}.safetensors").is_file()


def generator_state(generator: torch.Generator) -> torch.Tensor:
    """A generator's state as a uint8 tensor, to store beside the weights."""
    return generator.get_state().clone()


def restore_generator(generator: torch.Generator, state: torch.Tensor) -> torch.Generator:
    """Put a saved state back into ``generator`` and return it."""
    generator.set_state(state.to(torch.uint8).cpu())
    return generator
