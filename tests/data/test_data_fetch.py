import hashlib
import socket

import pytest

from neuralsmith import data
from neuralsmith.data import sources
from neuralsmith.data.fetch import fetch, fetch_dir
from neuralsmith.data.idx import IDX_STEMS
from neuralsmith.data.sources import RemoteFile, RemoteSet


@pytest.fixture
def toy_remote(monkeypatch, http_root, idx_folder, toy_arrays):
    """A fetchable set 'toy' whose four .gz files the local server serves under /toy/."""
    root, url, requests = http_root
    folder = idx_folder(toy_arrays(), root / "toy", gz=(True,) * 4)
    files = tuple(RemoteFile(f"{stem}.gz", hashlib.sha256((folder / f"{stem}.gz").read_bytes()).hexdigest(),
                             (folder / f"{stem}.gz").stat().st_size) for stem in IDX_STEMS.values())
    remote = RemoteSet("toy", "a toy set", urls=(f"{url}/toy/",), files=files)
    monkeypatch.setitem(sources.REMOTE_SETS, "toy", remote)
    return remote, folder, url, requests


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part"] if folder.exists() else []


def test_fetch_downloads_verifies_and_loads(toy_remote, tmp_path):
    _, served, url, _ = toy_remote
    calls = []
    folder = fetch("toy", on_progress=lambda *a: calls.append(a))
    assert folder == tmp_path / "share" / "neuralsmith" / "toy" == fetch_dir("toy")
    for stem in IDX_STEMS.values():
        assert (folder / f"{stem}.gz").read_bytes() == (served / f"{stem}.gz").read_bytes()
    assert _no_leftovers(folder) == []
    assert calls[-1][1] == calls[-1][2] > 0
    assert data.load(str(folder)).x_train.shape == (6, 12)


def test_fetch_goes_to_neuralsmith_data_when_set(toy_remote, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSMITH_DATA", str(tmp_path / "mine"))
    assert fetch("toy") == tmp_path / "mine" / "toy"


def test_sha_mismatch_is_refused_and_nothing_is_left_behind(toy_remote, monkeypatch, tmp_path):
    remote, _, _, _ = toy_remote
    bad = RemoteFile(remote.files[0].name, "0" * 64, remote.files[0].size)
    monkeypatch.setitem(sources.REMOTE_SETS, "toy", RemoteSet("toy", "", remote.urls, (bad,) + remote.files[1:]))
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match=r"SHA-256 mismatch .*the download was discarded"):
        fetch("toy", dest=dest)
    assert not (dest / bad.name).exists()
    assert _no_leftovers(dest) == []


def test_download_larger_than_published_is_cut_off(toy_remote, monkeypatch, tmp_path):
    remote, _, _, _ = toy_remote
    small = RemoteFile(remote.files[0].name, remote.files[0].sha256, 10)
    monkeypatch.setitem(sources.REMOTE_SETS, "toy", RemoteSet("toy", "", remote.urls, (small,)))
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="more than the expected 10 bytes"):
        fetch("toy", dest=dest)
    assert list(dest.iterdir()) == []


def test_base_url_overrides_the_official_urls(toy_remote, monkeypatch):
    remote, _, url, requests = toy_remote
    monkeypatch.setitem(sources.REMOTE_SETS, "toy", RemoteSet("toy", "", ("http://127.0.0.1:9/",), remote.files))
    fetch("toy", base_url=f"{url}/toy")
    assert sorted(requests) == sorted(f"/toy/{f.name}" for f in remote.files)


def test_neuralsmith_mirror_env_var(toy_remote, monkeypatch):
    remote, _, url, requests = toy_remote
    monkeypatch.setitem(sources.REMOTE_SETS, "toy", RemoteSet("toy", "", ("http://127.0.0.1:9/",), remote.files))
    monkeypatch.setenv("NEURALSMITH_MIRROR", url)
    fetch("toy")
    assert len(requests) == 4


def test_verified_files_already_there_are_not_downloaded_again(toy_remote):
    _, _, _, requests = toy_remote
    fetch("toy")
    fetch("toy")
    assert len(requests) == 4


def test_next_url_is_tried_when_one_fails(toy_remote, monkeypatch):
    remote, _, url, _ = toy_remote
    monkeypatch.setitem(sources.REMOTE_SETS, "toy",
                        RemoteSet("toy", "", (f"{url}/missing/", f"{url}/toy/"), remote.files))
    assert len(list(fetch("toy").iterdir())) == 4


def test_unreachable_server_raises_connection_error(toy_remote, monkeypatch, tmp_path):
    remote, _, _, _ = toy_remote
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match="could not download"):
        fetch("toy", base_url=f"http://127.0.0.1:{port}", dest=tmp_path / "d", timeout=5)
    assert list((tmp_path / "d").iterdir()) == []


def test_unknown_name_lists_the_fetchable_sets():
    with pytest.raises(ValueError, match="fetchable: fashion-mnist, kmnist, mnist"):
        fetch("cifar")


def test_cli_fetch_then_info(toy_remote, cli, tmp_path):
    code, out, err = cli("data", "fetch", "toy", "--json")
    assert code == 0, err
    folder = tmp_path / "share" / "neuralsmith" / "toy"
    assert str(folder) in out
    code, out, _ = cli("data", "info", str(folder), "--json")
    assert code == 0 and '"n_train": 6' in out


def test_cli_fetch_sha_mismatch_is_one_line_exit_2(toy_remote, monkeypatch, cli):
    remote, _, _, _ = toy_remote
    bad = RemoteFile(remote.files[0].name, "f" * 64, remote.files[0].size)
    monkeypatch.setitem(sources.REMOTE_SETS, "toy", RemoteSet("toy", "", remote.urls, (bad,)))
    code, _, err = cli("data", "fetch", "toy", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "SHA-256 mismatch" in err and "Traceback" not in err


def test_cli_fetch_with_progress_bar(toy_remote, cli, tmp_path):
    code, out, err = cli("data", "fetch", "toy")
    assert code == 0, err
    assert len(list((tmp_path / "share" / "neuralsmith" / "toy").iterdir())) == 4
