"""The named IDX data sets (MNIST, Fashion-MNIST, KMNIST): where they are published, their
SHA-256 sums, and where a local copy is looked up.

A named set ``NAME`` is looked up, in order, in ``$NEURALSMITH_DATA/NAME/``, in the user data
folder where ``neuralsmith data fetch NAME`` puts it (:func:`data_home`: on Linux
``$XDG_DATA_HOME/neuralsmith/NAME/``, default ``~/.local/share/neuralsmith/NAME/``; the platform's
own folder on macOS and Windows), then in a system folder (Debian's
``dataset-fashion-mnist`` package installs Fashion-MNIST to ``/usr/share/datasets/fashion-mnist``).

SHA-256 sums are of the ``.gz`` files as the publishers serve them, with their sizes. Each sum
appears in several independent public download manifests (TensorFlow Datasets'
``url_checksums``, other loaders); the Fashion-MNIST ones match the MD5s in its README.
Debian's ``dataset-fashion-mnist`` ships the same compressed data with a normalised gzip
header (no file name, mtime 2020-06-05), so its ``.gz`` files hash differently; restoring the
original header (file name set, mtime 1504176606 for train, 1504176627 for t10k) reproduces
the Fashion-MNIST sums byte for byte, which ``tests/data/test_sources.py`` checks where the
package is installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from neuralsmith.data.idx import IDX_STEMS, idx_files


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, SHA-256 of its bytes, and its size in bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class RemoteSet:
    """A named IDX data set: base URLs (official first, then mirrors) and its four files."""

    name: str
    description: str
    urls: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    n_classes: int = 10


def _files(sums: dict[str, tuple[str, int]]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f"{IDX_STEMS[key]}.gz", sha, size) for key, (sha, size) in sums.items())


REMOTE_SETS: dict[str, RemoteSet] = {
    "mnist": RemoteSet(
        "mnist", "handwritten digits, 60000/10000, 28x28, 10 classes (LeCun et al., 1998)",
        urls=("https://yann.lecun.com/exdb/mnist/",
              "https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        files=_files({
            "x_train": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "y_train": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "x_test": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "y_test": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        })),
    "fashion-mnist": RemoteSet(
        "fashion-mnist", "Zalando article images, 60000/10000, 28x28, 10 classes "
        "(Xiao, Rasul & Vollgraf, 2017)",
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files=_files({
            "x_train": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            "y_train": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            "x_test": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            "y_test": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        })),
    "kmnist": RemoteSet(
        "kmnist", "Kuzushiji (cursive Japanese) characters, 60000/10000, 28x28, 10 classes "
        "(Clanuwat et al., 2018)",
        urls=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
              "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
        files=_files({
            "x_train": ("51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4", 18165135),
            "y_train": ("e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17", 29497),
            "x_test": ("edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5", 3041136),
            "y_test": ("20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c", 5120),
        })),
}

SYSTEM_DIRS: dict[str, Path] = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}


def data_home() -> Path:
    """The user data folder, by the platform's convention (platformdirs).

    Linux: ``$XDG_DATA_HOME/neuralsmith``, default ``~/.local/share/neuralsmith``; macOS:
    ``~/Library/Application Support/neuralsmith``; Windows: ``%LOCALAPPDATA%\\neuralsmith``.
    ``$NEURALSMITH_DATA`` is looked in before it (:func:`search_dirs`).
    """
    return Path(platformdirs.user_data_dir("neuralsmith", appauthor=False))


def cache_home() -> Path:
    """The user cache folder: ``$NEURALSMITH_CACHE`` if set, else the platform's (platformdirs).

    Linux: ``$XDG_CACHE_HOME/neuralsmith``, default ``~/.cache/neuralsmith``; macOS:
    ``~/Library/Caches/neuralsmith``; Windows: ``%LOCALAPPDATA%\\neuralsmith\\Cache``.
    """
    if os.environ.get("NEURALSMITH_CACHE"):
        return Path(os.environ["NEURALSMITH_CACHE"]).expanduser()
    return Path(platformdirs.user_cache_dir("neuralsmith", appauthor=False))


def search_dirs(name: str) -> list[Path]:
    """The folders looked in for the named set, in order."""
    root = os.environ.get("NEURALSMITH_DATA")
    dirs = ([Path(root).expanduser() / name] if root else []) + [data_home() / name]
    if name in SYSTEM_DIRS:
        dirs.append(SYSTEM_DIRS[name])
    return dirs


def find_local(name: str) -> Path:
    """The first folder holding all four IDX files of the named set.

    Raises:
        FileNotFoundError: saying where it looked and how to get the data.
    """
    dirs = search_dirs(name)
    for folder in dirs:
        try:
            idx_files(folder)
            return folder
        except FileNotFoundError:
            continue
    how = [f"run `neuralsmith data fetch {name}`"]
    if name == "fashion-mnist":
        how.append("`apt-get install dataset-fashion-mnist`")
    how.append(f"set NEURALSMITH_DATA to a folder holding {name}/ with the four IDX files")
    raise FileNotFoundError(f"{name}: data not found in {', '.join(map(str, dirs))}; "
                            f"{', or '.join(how)}")
