"""Peak memory of preparing an MPI3D-sized dataset, and of reading it back.

Writes a synthetic mpi3d_real.npz of the real size (1,036,800 × 64 × 64 × 3 uint8, 12.7 GB) in
np.savez's layout (a stored zip64 member ``images.npy``), streaming, into a temporary directory;
then runs, each in a fresh subprocess whose memory is sampled from /proc/<pid>/status:

(a) ``prepare("mpi3d_npz", ...)`` of that file;
(b) ``load_prepared`` and a pass over all images in chunks (each chunk copied out of the memmap).

For each it prints the peak resident set (VmHWM, which counts touched pages of memory-mapped
files) and the sampled peaks of RssAnon (private memory) and RssFile (file-backed pages, which
the kernel can drop or write back under pressure). Everything is deleted at the end.

    python benchmarks/bench_prepare_memory.py [--dir /path/with/30GB] [--num-images N]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from lambdabeta.formats.mpi3d import MPI3D_SIZES
from lambdabeta.loader import load_prepared
from lambdabeta.prepare import prepare

IMAGE_SHAPE = (64, 64, 3)
STATUS_FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
SAMPLE_SECONDS = 0.05


def write_synthetic_npz(path: Path, num_images: int, chunk: int) -> None:
    """An .npz laid out as ``np.savez(path, images=...)`` writes it, without the array in RAM."""
    row = np.arange(math.prod(IMAGE_SHAPE), dtype=np.uint32)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive,
        archive.open("images.npy", "w", force_zip64=True) as member,
    ):
        header = {"descr": "|u1", "fortran_order": False, "shape": (num_images, *IMAGE_SHAPE)}
        np.lib.format.write_array_header_1_0(member, header)
        for start in range(0, num_images, chunk):
            index = np.arange(start, min(start + chunk, num_images), dtype=np.uint32)
            member.write(((index[:, None] * 7 + row) % 251).astype(np.uint8).tobytes())


def proc_status(pid: int | str) -> dict[str, int]:
    """Memory fields of /proc/<pid>/status, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in STATUS_FIELDS:
            fields[key] = int(value.split()[0])
    return fields


def run_measured(args: list[str]) -> dict[str, float]:
    """Run this script in ``--child`` mode; sample its memory until it exits."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True
    )
    peaks = dict.fromkeys(STATUS_FIELDS, 0)

    def sample() -> None:
        while child.poll() is None:
            try:
                for key, value in proc_status(child.pid).items():
                    peaks[key] = max(peaks[key], value)
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, _ = child.communicate()
    sampler.join()
    if child.returncode:
        raise RuntimeError(f"child {args} failed with exit status {child.returncode}")
    report = json.loads(stdout.strip().splitlines()[-1])  # the child's own last word
    return {**report, **{f"sampled_peak_{key}": value for key, value in peaks.items()}}


def grid_sizes(num_images: int) -> tuple[int, ...]:
    """The MPI3D grid, or a one-factor grid for a smaller trial run."""
    full = math.prod(MPI3D_SIZES)
    return MPI3D_SIZES if num_images == full else (num_images, *[1] * (len(MPI3D_SIZES) - 1))


def child_main(task: str, src: str, out_dir: str, chunk: int, num_images: int) -> None:
    start = time.perf_counter()
    if task == "prepare":
        prepare(
            "mpi3d_npz",
            src,
            out_dir,
            name="mpi3d_real",
            chunk=chunk,
            factor_sizes=grid_sizes(num_images),
        )
    else:
        images = load_prepared(out_dir).images
        checksum = 0
        for first in range(0, len(images), chunk):
            block = np.ascontiguousarray(images[first : first + chunk])
            checksum += int(block[:, 0, 0, 0].sum())
    print(json.dumps({"seconds": time.perf_counter() - start, **proc_status("self")}))


def gb(kilobytes: float) -> str:
    return f"{kilobytes * 1024 / 1e9:6.2f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="temporary directory (needs 2 × 12.7 GB)")
    parser.add_argument(
        "--num-images",
        type=int,
        default=math.prod(MPI3D_SIZES),
        help="fewer than the MPI3D grid for a quick trial",
    )
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--child", nargs=3, metavar=("TASK", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child, chunk=args.chunk, num_images=args.num_images)
        return

    array_bytes = args.num_images * math.prod(IMAGE_SHAPE)
    print(
        f"images: {args.num_images:,} × {IMAGE_SHAPE} uint8 = {array_bytes / 1e9:.2f} GB "
        f"(float32 would be {4 * array_bytes / 1e9:.1f} GB); chunk {args.chunk} images = "
        f"{args.chunk * math.prod(IMAGE_SHAPE) / 1e6:.0f} MB"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src, out_dir = Path(tmp) / "mpi3d_real.npz", Path(tmp) / "prepared"
        start = time.perf_counter()
        write_synthetic_npz(src, args.num_images, args.chunk)
        print(
            f"wrote {src.stat().st_size / 1e9:.2f} GB synthetic npz in "
            f"{time.perf_counter() - start:.0f} s"
        )
        for label, task in [("(a) prepare", "prepare"), ("(b) load_prepared + touch all", "touch")]:
            report = run_measured(
                [
                    task,
                    str(src),
                    str(out_dir),
                    "--chunk",
                    str(args.chunk),
                    "--num-images",
                    str(args.num_images),
                ]
            )
            print(
                f"{label}: {report['seconds']:.0f} s; peak RSS (VmHWM) {gb(report['VmHWM'])}; "
                f"sampled peaks: RssAnon {gb(report['sampled_peak_RssAnon'])}, "
                f"RssFile {gb(report['sampled_peak_RssFile'])}, "
                f"RssShmem {gb(report['sampled_peak_RssShmem'])}"
            )
    print("temporary files deleted")


if __name__ == "__main__":
    main()
