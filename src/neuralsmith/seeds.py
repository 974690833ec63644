"""Randomness: one convention for generators, one place that derives child seeds.

Every random draw goes through a ``torch.Generator`` passed explicitly. Wherever a model is
built or trained (``RBM``, ``ClassRBM``, DAEs, stacks, ``rbm.train``, ``finetune``, every
experiment), ``generator=None`` means one thing: a fresh seed, drawn from the operating system
and logged (a run's ``results.json`` records its ``seed``), so every run can be repeated. Only
the in-place initializers of :mod:`neuralsmith.init` (``uniform_``, ``he_normal_``, ...) and
single sampling steps (``RBM.sample_hidden``) keep torch.nn.init's convention, where None is
torch's global generator, so that they drop in for torch's own functions. Child generators (a
study's trials, a seed's data order) are derived from a root seed by a stable hash, so a
result does not depend on what ran before it.

Example:
    >>> g = derived_generator(0, "depth", 2)
    >>> g.initial_seed() == derived_generator(0, "depth", 2).initial_seed()
    True
    >>> resolve_seed(7)
    7
"""

from __future__ import annotations

import logging
import os
import zlib
from typing import Any

import torch

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer


def fresh_seed() -> int:
    """A new seed from the operating system's entropy."""
    return int.from_bytes(os.urandom(8), "little") & MAX_SEED


def resolve_seed(seed: int | None) -> int:
    """``seed``, or a fresh one (logged) if None.

    Raises:
        ValueError: a seed that is not an integer in [0, 2**63 - 1].
    """
    if seed is None:
        seed = fresh_seed()
        log.info("no seed given; drew seed %d (pass it to repeat this run)", seed)
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**63 - 1]; got {seed!r}")
    return seed


def generator(seed: int | None = None, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (a fresh, logged seed if None)."""
    return torch.Generator(device=device).manual_seed(resolve_seed(seed))


def resolve_generator(gen: torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """``gen`` checked against ``device``, or a fresh generator (logged seed) if None.

    Raises:
        ValueError: if ``gen`` lives on another kind of device than the data.
    """
    device = torch.device(device)
    if gen is None:
        return generator(None, device)
    if gen.device.type != device.type:
        raise ValueError(f"generator is on {gen.device} but the data on {device}; "
                         f"create it with torch.Generator(device={str(device)!r})")
    return gen


def derived_generator(*parts: Any, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded from a stable hash (CRC-32) of ``parts``, e.g. (root seed, depth, start)."""
    return torch.Generator(device=device).manual_seed(zlib.crc32("/".join(map(str, parts)).encode()))
