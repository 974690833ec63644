"""How fast and how cheaply a hostile IDX folder is refused (issue 17's acceptance figure).

Builds, in a temporary folder, a 2 MB gzip ``train-images-idx3-ubyte.gz`` that declares 2^31
images of 1x1 pixels and really inflates to 2 GiB of zeros (a decompression bomb), then loads
the folder in a fresh subprocess and prints the wall time and the peak RSS the load added:

* ``mismatch``: its labels file declares 4 labels (refused by the count check);
* ``limit``: its labels file is a second bomb declaring 2^31 labels, under
  ``NEURALSMITH_MAX_BYTES=8G`` (refused by the memory limit, as under an 8 GB cap).

    PYTHONPATH=src python benchmarks/hostile_idx.py
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

BLOCK = 1 << 24


def gzip_of_zeros(head: bytes, n_zeros: int) -> bytes:
    """A valid gzip file of ``head`` + ``n_zeros`` zero bytes (a multiple of 16 MiB), built fast
    by repeating one deflate block that a full flush makes independent of what precedes it."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = z.compress(head) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(bytes(BLOCK)) + z.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = zlib.crc32(head), bytes(BLOCK)
    for _ in range(n_zeros // BLOCK):
        crc = zlib.crc32(zeros, crc)
    body = start + block * (n_zeros // BLOCK) + z.flush()
    trailer = struct.pack("<II", crc, (len(head) + n_zeros) % 2**32)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + trailer


def idx_head(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def hostile_folder(folder: Path, n_images: int = 2**31, bomb_labels: bool = False) -> Path:
    """An IDX folder whose train images are a 2 MB gzip declaring ``n_images`` 1x1 images."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        gzip_of_zeros(idx_head((n_images, 1, 1)), n_images))
    labels = gzip_of_zeros(idx_head((n_images,)), n_images) if bomb_labels else \
        idx_head((4,)) + bytes(4)
    (folder / ("train-labels-idx1-ubyte" + (".gz" if bomb_labels else ""))).write_bytes(labels)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_head((2, 1, 1)) + bytes(2))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_head((2,)) + bytes(2))
    return folder


CHILD = """
import json, resource, sys, time
from neuralsmith.data.idx import read_idx_folder
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    read_idx_folder(sys.argv[1])
    outcome = "loaded"
except (ValueError, FileNotFoundError) as exc:
    outcome = str(exc)
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_added_mb": (after - before) / 1024,
                  "rss_peak_mb": after / 1024, "outcome": outcome}))
"""


def measure(folder: Path, env: dict) -> dict:
    """Load ``folder`` in a fresh interpreter; its wall time and peak RSS (ru_maxrss)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"mismatch": (hostile_folder(Path(tmp) / "mismatch"), env),
                 "limit": (hostile_folder(Path(tmp) / "limit", bomb_labels=True),
                           {**env, "NEURALSMITH_MAX_BYTES": "8G"})}
        for name, (folder, case_env) in cases.items():
            size = (folder / "train-images-idx3-ubyte.gz").stat().st_size
            r = measure(folder, case_env)
            print(f"{name}: {size / 1e6:.2f} MB gzip declaring 2^31 images: refused in "
                  f"{r['seconds'] * 1000:.1f} ms, peak RSS +{r['rss_added_mb']:.1f} MB "
                  f"(process peak {r['rss_peak_mb']:.0f} MB)\n  {r['outcome']}")


if __name__ == "__main__":
    main()
