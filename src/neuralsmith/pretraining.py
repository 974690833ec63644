"""Greedy pre-training of a DBN or a stacked DAE into a run folder, and sampling from it.

The ``neuralsmith pretrain dbn|sda`` and ``neuralsmith sample`` commands are thin layers over
:func:`pretrain_stack` and :func:`sample_run`. The run folder holds ``config.toml``,
``results.json``, ``metrics.csv`` (one row per layer and epoch), ``checkpoints/stack.*`` (the
stack, safetensors + JSON), the per-layer checkpoints a killed run resumes from, and
``figures/filters.png`` (and ``figures/samples.png`` for a DBN).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from neuralsmith import data as data_api
from neuralsmith import plots
from neuralsmith.runfolder import RunFolder
from neuralsmith.stack import (DBN, StackedDAE, greedy_pretrain_dbn, greedy_pretrain_sda, load_stack,
                               save_stack)

KINDS = ("dbn", "sda")


@dataclass(frozen=True)
class StackConfig:
    """Settings of one greedy pre-training run (written to ``config.toml``)."""

    kind: str = "dbn"
    data: str = "digits"
    layers: tuple[int, ...] = (500, 500, 2000)
    epochs: int = 10
    lr: float = 0.05
    batch_size: int = 20
    method: str = "cd"
    k: int = 1
    corruption: tuple[float, ...] = (0.1, 0.2, 0.3)
    binarize: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be dbn or sda; got {self.kind!r}")
        if not self.layers or min(self.layers) < 1:
            raise ValueError(f"layers must be hidden sizes >= 1, as in 500,500,2000; got {list(self.layers)}")
        if self.kind == "sda" and len(self.corruption) not in (1, len(self.layers)):
            raise ValueError(f"corruption needs one level, or one per layer ({len(self.layers)}); "
                             f"got {list(self.corruption)}")


def _build(cfg: StackConfig, n_in: int, generator: torch.Generator) -> DBN | StackedDAE:
    sizes = [n_in, *cfg.layers]
    if cfg.kind == "dbn":
        return DBN(sizes, generator=generator)
    levels = list(cfg.corruption) * (len(cfg.layers) if len(cfg.corruption) == 1 else 1)
    return StackedDAE(sizes, levels=levels, generator=generator)


def _train(model: DBN | StackedDAE, cfg: StackConfig, x: torch.Tensor, run: RunFolder,
           generator: torch.Generator, progress: bool) -> list[list[dict[str, Any]]]:
    common = dict(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, generator=generator,
                  checkpoint_dir=run.checkpoints, progress=progress)
    if isinstance(model, DBN):
        return greedy_pretrain_dbn(model, x, method=cfg.method, k=cfg.k, **common)
    return greedy_pretrain_sda(model, x, **common)


def pretrain_stack(out: str | Path, cfg: StackConfig, *, progress: bool = True) -> dict[str, Any]:
    """Pre-train the stack ``cfg`` describes into run folder ``out``; return results.json's content.

    A killed run rerun with the same settings resumes at the layer (and, for a DBN, the epoch)
    it had reached.
    """
    t0 = time.perf_counter()
    run = RunFolder(out)
    run.claim({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()})
    ds = data_api.load(cfg.data, binarize=None if cfg.binarize == "none" else cfg.binarize, seed=cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = _build(cfg, ds.n_features, generator)
    histories = _train(model, cfg, ds.x_train, run, generator, progress)
    run.write_metrics([{"layer": l + 1, **row} for l, h in enumerate(histories) for row in h])
    save_stack(model, run.checkpoints, {"data": cfg.data, "image_shape": list(ds.image_shape)})
    first = model.rbms[0].weight if isinstance(model, DBN) else model.layers[0].weight
    plots.save(plots.image_grid(first.detach()[:100], ds.image_shape, f"{cfg.kind}: first-layer filters"),
               run.figures / "filters.png")
    if isinstance(model, DBN):
        sample_run(out, n=100, gibbs_steps=1000, seed=cfg.seed)
    results = {"kind": cfg.kind, "layers": [len(h) for h in histories], "final": [h[-1] for h in histories],
               "seconds": time.perf_counter() - t0}
    run.write_results(results, seed=cfg.seed)
    return results


def sample_run(run_dir: str | Path, *, n: int = 100, gibbs_steps: int = 1000, seed: int = 0) -> Path:
    """Draw ``n`` samples from a pre-trained DBN's run folder into ``figures/samples.png``.

    Raises:
        ValueError: if the run holds a stacked DAE (not a generative model).
    """
    run = RunFolder(run_dir)
    model, meta = load_stack(run.checkpoints)
    if not isinstance(model, DBN):
        raise ValueError(f"{run_dir}: a stacked DAE is not a generative model; sample from a DBN run")
    x = model.sample(n, gibbs_steps, torch.Generator().manual_seed(seed))
    fig = plots.image_grid(x, tuple(meta["image_shape"]), f"DBN samples ({gibbs_steps} Gibbs steps)",
                           normalize=False)
    return plots.save(fig, run.figures / "samples.png")
