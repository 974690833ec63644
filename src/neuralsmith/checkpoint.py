"""Checkpoints without pickle: tensors in safetensors, metadata in JSON, both written atomically.

A checkpoint named ``NAME`` in a folder is two files, ``NAME.safetensors`` and ``NAME.json``.
The JSON is written last, so a checkpoint whose JSON exists is complete.

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
from typing import Any, Mapping

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from neuralsmith.runs import atomic_write_bytes, read_json, write_json


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
        raise ValueError(f"{path}: not a valid safetensors file ({exc})") from None
    return tensors, meta


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
