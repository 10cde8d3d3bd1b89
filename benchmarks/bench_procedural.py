"""Time the render of the full procedural dSprites grid (737,280 images) into a memory-mapped
file, as the prepare step does.

    python benchmarks/bench_procedural.py --threads 2 --chunk 1024 4096

Prints, per chunk size, the wall time and images per second. The temporary file (3 GB) is
deleted afterwards.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from lambdabeta import procedural


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument(
        "--chunk",
        type=int,
        nargs="+",
        default=[1024],
        help="images rendered at a time (several values: one run each)",
    )
    parser.add_argument("--dir", default=None, help="where to put the temporary memmap")
    args = parser.parse_args()

    num_images = math.prod(procedural.factor_sizes())
    canvas = procedural.CANVAS
    print(
        f"full grid: {num_images:,} images of {canvas}×{canvas}, "
        f"{num_images * canvas * canvas / 1e9:.2f} GB; torch {torch.__version__}, "
        f"{args.threads} thread(s)"
    )
    for chunk in args.chunk:
        # a fresh file each time: first-touch page faults are part of the real cost
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            start = time.perf_counter()
            out = np.lib.format.open_memmap(
                Path(tmp) / "images.npy",
                mode="w+",
                dtype=np.uint8,
                shape=(num_images, canvas, canvas),
            )
            procedural.render_grid(out=out, chunk=chunk, threads=args.threads, foreground=255)
            out.flush()
            seconds = time.perf_counter() - start
            del out
        print(f"chunk {chunk:>6}: {seconds:7.1f} s  {num_images / seconds:10,.0f} images/s")


if __name__ == "__main__":
    main()
