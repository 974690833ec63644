"""Shared fixtures: a CLI runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

import pytest
import torch

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
