"""What a study runs: a frozen, validated spec read from TOML with command-line overrides."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from neuralsmith import limits, precision as precision_mod, seeds
from neuralsmith.runfolder import load_toml

LIST_ITEM = {"lr_grid": float}  # the item type of a list setting whose default is empty

#: the starts a study runs unless told otherwise
DEFAULT_STARTS = ("default", "uniform", "normal", "glorot", "he", "lecun", "orthogonal", "lsuv",
                  "dbn", "sda")
#: every start a study knows: the default ones and those run only when asked for (``dbm``)
ALL_STARTS = (*DEFAULT_STARTS, "dbm")


@dataclass(frozen=True)
class StudySpec:
    """A study: every start x every depth, ``seeds`` networks each, one fine-tuning budget.

    Attributes:
        name: label for the report.
        data: data source (see :func:`neuralsmith.data.load`).
        depths: numbers of hidden layers to compare.
        starts: how networks start (initializer schemes, ``dbn``, ``sda``, ...; ``dbm`` only
            when listed: it is not among the default starts).
        seeds: networks per (depth, start).
        activation: hidden nonlinearity.
        hidden: units per hidden layer.
        epochs, lr, momentum, batch_size: the fine-tuning budget, the same for every start.
        lr_grid: learning rates to try per start and depth, each on all seeds, keeping the one
            with the lowest median validation error (Erhan et al. 2010 tuned each method so);
            empty (the default): no tuning, every start fine-tunes at ``lr``.
        validation: fraction of train held out for validation.
        pretrain_epochs, pretrain_batch_size: the unsupervised budget per layer (``dbn``, ``sda``).
        rbm_lr, dae_lr: the learning rates of CD-1 (DBN) and of the denoising autoencoders.
        corruption: the SdA's masking level.
        function_space_examples: test examples whose outputs place a network in function space.
        families: the two starts drawn together in the function-space picture.
        seed: the root seed; every trial derives its own from it.
        threads: torch threads (small digits-sized nets run fastest on one; 0 keeps torch's choice).
        n_train: use only this many training examples (seeded subset; 0 = all).
        precision: ``fp32``, or ``bf16``: the batched DBN and SdA pre-training and fine-tuning
            with bfloat16 products and fp32 state (:mod:`neuralsmith.precision`; fp32 where
            bf16 is not fast). The DBM start trains fp32.
    """

    name: str = "quick"
    data: str = "digits"
    depths: tuple[int, ...] = (1, 2, 3)
    starts: tuple[str, ...] = DEFAULT_STARTS
    seeds: int = 10
    activation: str = "sigmoid"
    hidden: int = 100
    epochs: int = 30
    lr: float = 0.1
    lr_grid: tuple[float, ...] = ()
    momentum: float = 0.9
    batch_size: int = 32
    validation: float = 0.15
    pretrain_epochs: int = 20
    pretrain_batch_size: int = 10
    rbm_lr: float = 0.05
    dae_lr: float = 0.1
    corruption: float = 0.2
    function_space_examples: int = 200
    families: tuple[str, str] = ("uniform", "dbn")
    seed: int = 0
    threads: int = 1
    n_train: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("seeds", "hidden", "epochs", "batch_size", "pretrain_epochs", "pretrain_batch_size",
                     "function_space_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"study: {name} must be >= 1; got {getattr(self, name)}")
        if self.threads < 0 or self.n_train < 0:
            raise ValueError(f"study: threads and n_train must be >= 0; got {self.threads}, {self.n_train}")
        if not self.depths or min(self.depths) < 1:
            raise ValueError(f"study: depths must be one or more numbers >= 1; got {self.depths}")
        if self.activation not in ("sigmoid", "tanh", "relu"):
            raise ValueError(f"study: activation must be sigmoid, tanh or relu; got {self.activation!r}")
        if len(self.families) != 2:
            raise ValueError(f"study: families names two starts; got {self.families}")
        self._check_starts()
        self._check_numbers()
        precision_mod.check_precision(self.precision)
        seeds.resolve_seed(self.seed)
        limits.check_network([1, *[self.hidden] * max(self.depths), 1],
                             "the deepest study network", self.batch_size * self.seeds)

    def _check_starts(self) -> None:
        """Refuse an unknown start before anything trains (and an empty list of starts)."""
        unknown = [s for s in (*self.starts, *self.families) if s not in ALL_STARTS]
        if unknown or not self.starts:
            raise ValueError(f"study: unknown start(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                             f"known: {', '.join(ALL_STARTS)}")

    def _check_numbers(self) -> None:
        """Learning rates > 0, fractions in range, every float finite."""
        for name, value in (("lr", self.lr), ("rbm_lr", self.rbm_lr), ("dae_lr", self.dae_lr),
                            *(("lr_grid", v) for v in self.lr_grid)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"study: {name} must be a finite number > 0; got {value}")
        if len(set(self.lr_grid)) != len(self.lr_grid):
            raise ValueError(f"study: lr_grid lists a rate twice; got {list(self.lr_grid)}")
        for name, low, high in (("momentum", 0.0, 1.0), ("validation", 0.0, 0.99), ("corruption", 0.0, 1.0)):
            value = getattr(self, name)
            if not low <= value <= high:  # False for NaN
                raise ValueError(f"study: {name} must be in [{low:g}, {high:g}]; got {value}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], where: str = "study") -> "StudySpec":
        """Build a spec from plain values, refusing unknown keys and wrong types loudly."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(mapping) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        values = {k: _coerce(k, v, cls.__dataclass_fields__[k].default, where) for k, v in mapping.items()}
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> "StudySpec":
        """Read a spec from a TOML file (a ``[study]`` table or top-level keys), then override."""
        raw = load_toml(path)
        raw = raw.get("study", raw)
        return cls.from_mapping({**raw, **{k: v for k, v in overrides.items() if v is not None}},
                                where=str(path))

    def learning_rates(self) -> tuple[float, ...]:
        """The fine-tuning rates each trial tries: ``lr_grid``, or ``(lr,)`` when it is empty."""
        return self.lr_grid or (self.lr,)

    def replace(self, **changes: Any) -> "StudySpec":
        """A copy with ``changes`` (None values ignored)."""
        return StudySpec.from_mapping({**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Check ``value`` against the type of the field's default (tuples from lists)."""
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: {key} must be a list; got {value!r}")
        kind = LIST_ITEM.get(key) or type(default[0])
        if kind is float:
            value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{where}: {key} must be a list of {kind.__name__}; got {value!r}")
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be a finite number; got {value!r}")
    if type(value) is not type(default):
        raise ValueError(f"{where}: {key} must be {type(default).__name__}; got {value!r}")
    return value
