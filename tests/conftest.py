"""Shared fixtures: a CLI runner that returns (exit code, stdout, stderr), and a run killed mid-way."""

from __future__ import annotations

import pytest
import torch

from neuralsmith import checkpoint
from neuralsmith.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests use small models: one thread is faster for them and immune to a busy machine."""
    torch.set_num_threads(1)
    yield


@pytest.fixture
def cli(capsys):
    """Run ``neuralsmith ARGS...`` in-process; return (code, stdout, stderr)."""

    def run(*args: str):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


class Killed(BaseException):
    """Stands for kill -9: nothing in the run catches it."""


@pytest.fixture
def killed_cli(cli, monkeypatch):
    """Run ``neuralsmith ARGS...`` and kill it at the ``nth`` checkpoint save that ``where`` picks.

    ``where(folder, name)`` says which saves count (e.g. those under ``layer-1``); the saves
    before the kill are on disk, as after a real kill -9.
    """

    def run(*args, where, nth: int):
        save, seen = checkpoint.save, []

        def dying_save(folder, name, *a, **kw):
            if where(str(folder), name):
                seen.append(name)
                if len(seen) == nth:
                    raise Killed
            return save(folder, name, *a, **kw)

        monkeypatch.setattr(checkpoint, "save", dying_save)
        try:
            with pytest.raises(Killed):
                cli(*args)
        finally:
            monkeypatch.setattr(checkpoint, "save", save)

    return run


@pytest.fixture
def same_files():
    """``same_files(a, b, names)``: whether the files ``names`` hold the same bytes in folders a and b."""
    return lambda a, b, names: all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
