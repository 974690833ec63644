"""Download a named IDX data set, verifying every file's SHA-256.

Each file is streamed to a temporary file next to its destination while being hashed, and
renamed into place only if its size and SHA-256 match the published ones; otherwise the
temporary file is deleted, so a failed or tampered download never leaves anything behind.
Base URLs are tried in order (the official one first); ``base_url`` or ``$NEURALSMITH_MIRROR``
(files under ``MIRROR/NAME/``) replace them, e.g. for a local mirror.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from neuralsmith.data.sources import REMOTE_SETS, RemoteFile, RemoteSet, data_home
from neuralsmith.runfolder import file_mode

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (file name, bytes so far, bytes expected)
CHUNK = 1 << 20


def fetch_dir(name: str) -> Path:
    """Where ``fetch`` puts a set: ``$NEURALSMITH_DATA/NAME`` if set, else the user data folder."""
    root = os.environ.get("NEURALSMITH_DATA")
    return (Path(root).expanduser() if root else data_home()) / name


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, *, base_url: str | None = None, dest: str | os.PathLike | None = None,
          on_progress: Optional[Progress] = None, timeout: float = 60.0) -> Path:
    """Download the named set's four IDX files, verified, into ``dest``.

    Files already there with the right SHA-256 are kept; others are downloaded again.

    Args:
        name: ``mnist``, ``fashion-mnist`` or ``kmnist``.
        base_url: a URL the four files lie under, tried instead of the official ones.
        dest: the folder (default: :func:`fetch_dir`).
        on_progress: called as ``(file name, bytes so far, bytes expected)`` while downloading.
        timeout: seconds to wait on the network before giving up on a URL.

    Returns:
        The folder holding the four files.

    Raises:
        ValueError: for an unknown name, or when every URL served a file of the wrong size or
            SHA-256 (nothing is kept).
        ConnectionError: when no URL could be reached.
        PermissionError: when the destination is not writable.
    """
    if name not in REMOTE_SETS:
        raise ValueError(f"no download known for {name!r}; "
                         f"fetchable: {', '.join(sorted(REMOTE_SETS))}")
    remote = REMOTE_SETS[name]
    folder = Path(dest) if dest is not None else fetch_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{folder}: not writable; set NEURALSMITH_DATA to a folder you own")
    for file in remote.files:
        target = folder / file.name
        if target.is_file() and sha256_file(target) == file.sha256:
            log.info("%s already present and verified", target)
            continue
        _fetch_file(file, [u.rstrip("/") + "/" + file.name for u in _base_urls(remote, base_url)],
                    target, on_progress, timeout)
    return folder


def _base_urls(remote: RemoteSet, base_url: str | None) -> tuple[str, ...]:
    if base_url:
        return (base_url,)
    if os.environ.get("NEURALSMITH_MIRROR"):
        return (os.environ["NEURALSMITH_MIRROR"].rstrip("/") + "/" + remote.name,)
    return remote.urls


def _fetch_file(file: RemoteFile, urls: list[str], target: Path, on_progress: Optional[Progress],
                timeout: float) -> None:
    """Try each URL until one serves the expected bytes; raise with every URL's problem."""
    problems, refused = [], False
    for url in urls:
        try:
            _download_verified(url, file, target, on_progress, timeout)
            log.info("fetched %s from %s", target, url)
            return
        except ValueError as exc:  # reached, but served the wrong bytes
            problems.append(str(exc))
            refused = True
        except OSError as exc:  # urllib.error.URLError is an OSError
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
    if refused:
        raise ValueError(f"{file.name}: no URL served the published file, nothing was kept: "
                         f"{'; '.join(problems)}")
    raise ConnectionError(f"{file.name}: could not download ({'; '.join(problems)}); check the "
                          f"network, or pass --base-url / set NEURALSMITH_MIRROR to a mirror")


def _download_verified(url: str, file: RemoteFile, target: Path,
                       on_progress: Optional[Progress], timeout: float) -> None:
    """Stream ``url`` to a temporary file, hashing; rename it to ``target`` only if it verifies."""
    from neuralsmith import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"neuralsmith/{__version__}"})
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            digest = _stream(resp, out, url, file, on_progress)
            out.flush()
            os.fsync(out.fileno())
        if digest != file.sha256:
            raise ValueError(f"{url}: SHA-256 mismatch (expected {file.sha256}, got {digest}); "
                             f"the download was discarded")
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _stream(response, out, url: str, file: RemoteFile, on_progress: Optional[Progress]) -> str:
    """Copy the response to ``out`` in chunks; stop at once if it outgrows the expected size."""
    digest, done = hashlib.sha256(), 0
    while chunk := response.read(CHUNK):
        done += len(chunk)
        if done > file.size:
            raise ValueError(f"{url}: more than the expected {file.size} bytes; "
                             f"the download was discarded")
        digest.update(chunk)
        out.write(chunk)
        if on_progress is not None:
            on_progress(file.name, done, file.size)
    if done != file.size:
        raise ValueError(f"{url}: {done} bytes, expected {file.size}; the download was discarded")
    return digest.hexdigest()
