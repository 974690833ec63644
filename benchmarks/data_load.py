"""How long loading takes: Fashion-MNIST first and warm, and generating the synthetic sets.

Prints, measured in this one run (in a fresh temporary cache folder):

* Fashion-MNIST decode only: gunzip + parse the four IDX files, no cache;
* Fashion-MNIST first load: ``data.load`` with an empty cache (decode + write the .npy cache);
* Fashion-MNIST warm load: ``data.load`` again (read the .npy cache), median of several;
* seconds to generate 50 000 test images of each synthetic problem (``--synthetic``) and to
  apply each variation to Fashion-MNIST's 70 000 images (``--variations``).

    python benchmarks/data_load.py
    python benchmarks/data_load.py --synthetic --variations
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch


def seconds(fn, repeat=1):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fashion(repeat):
    from neuralsmith import data
    from neuralsmith.data.idx import read_idx_folder
    from neuralsmith.data.sources import find_local

    try:
        folder = find_local("fashion-mnist")
    except FileNotFoundError as exc:
        print(f"fashion-mnist: skipped ({exc})")
        return
    decode = seconds(lambda: read_idx_folder(folder).to_dataset(), repeat)
    first = seconds(lambda: data.load("fashion-mnist"))
    warm = seconds(lambda: data.load("fashion-mnist"), repeat)
    print(f"fashion-mnist from {folder}")
    print(f"  decode only (no cache)      {decode:6.3f} s  (median of {repeat})")
    print(f"  first load (decode + cache) {first:6.3f} s")
    print(f"  warm load (from .npy cache) {warm:6.3f} s  (median of {repeat})")


def synthetic():
    from neuralsmith.data.patches import photographs
    from neuralsmith.data.synthetic import generate

    photographs()  # read scikit-learn's JPEGs once, outside the timings
    for name in ("rectangles", "rectangles-image", "convex"):
        print(f"  {name:17s} 50000 test images  {seconds(lambda: generate(name, 1, 50000)):6.2f} s")


def variations():
    from neuralsmith.data import load_images
    from neuralsmith.data.variations import VARIATIONS, vary

    base = load_images("fashion-mnist")
    for variation in VARIATIONS:
        print(f"  fashion-mnist-{variation:10s} 70000 images  "
              f"{seconds(lambda: vary(base, variation)):6.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--variations", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NEURALSMITH_CACHE"] = cache
        print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} threads")
        fashion(args.repeat)
        if args.synthetic:
            print("synthetic problems (Larochelle et al., 2007)")
            synthetic()
        if args.variations:
            print("variations")
            variations()


if __name__ == "__main__":
    main()
