"""Fixtures of the data tests: an isolated environment, small IDX folders, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from neuralsmith.data import sources
from neuralsmith.data.idx import IDX_STEMS, write_idx


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reads or writes the user's cache or data folders, or the network's env vars."""
    monkeypatch.setenv("NEURALSMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.delenv("NEURALSMITH_DATA", raising=False)
    monkeypatch.delenv("NEURALSMITH_MIRROR", raising=False)


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Pretend no system package installed any data set."""
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": tmp_path / "no-such-system-dir"})


def _toy_arrays(n_train=6, n_test=4, shape=(4, 3), n_classes=3, seed=0):
    """Small random uint8 images and labels."""
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
            "y_train": rng.integers(0, n_classes, n_train).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
            "y_test": rng.integers(0, n_classes, n_test).astype(np.uint8)}


@pytest.fixture
def toy_arrays():
    """A function making small random uint8 images and labels (see ``_toy_arrays``)."""
    return _toy_arrays


@pytest.fixture
def idx_folder(tmp_path):
    """Write arrays as the four IDX files of a folder; return the folder."""

    def make(arrays=None, folder=None, gz=(True, False, True, False)):
        arrays = _toy_arrays() if arrays is None else arrays
        folder = Path(folder) if folder is not None else tmp_path / "toy"
        for (key, stem), compress in zip(IDX_STEMS.items(), gz):
            write_idx(folder / (stem + (".gz" if compress else "")), arrays[key])
        return folder

    return make


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http_root(tmp_path):
    """Serve a folder on 127.0.0.1; yield (folder, base URL, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_Quiet,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()
