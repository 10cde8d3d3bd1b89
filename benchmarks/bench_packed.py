"""Packed training: a pack of K runs against the same K runs trained one after another.

Comparison (default): K runs (seeds 0 … K−1 of one β) trained solo, one after another, then as
one pack in each mode (``loop``: the members' passes one after another, one optimizer; ``vmap``:
one grouped pass for all). Reports model-steps/s (K × steps / seconds of the training loops) and
the largest difference between each member's per-step loss curve and its solo run's (absolute,
and relative to the loss), over ``--steps`` steps:

    python benchmarks/bench_packed.py --threads 2                  # CPU: pack of 4, 200 steps

Sweep (``--sweep``, or ``sweep()`` from a device check): model-steps/s, memory and the
projected device-hours of the paper grid for each K ∈ {1, 2, 4, …, 64}, in each mode, eager and
with CUDA graphs (on CUDA only). Memory is the device's peak allocation on CUDA; on CPU the
process's peak resident set so far (a high-water mark: the sweep goes up in K):

    python benchmarks/bench_packed.py --sweep --device cuda --steps 100
    python benchmarks/bench_packed.py --sweep --batch-size 8 --steps 3 --ks 1 2 4 8   # CPU
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import PAPER_GRID_STEPS, synthetic_images

from lambdabeta.devices import select_device
from lambdabeta.settings import TrainSettings
from lambdabeta.training import PackMember, train_pack
from lambdabeta.training.layouts import PACK_MODES

SWEEP_KS = (1, 2, 4, 8, 16, 32, 64)


def run_settings(args: argparse.Namespace, seed: int, steps: int, **overrides) -> TrainSettings:
    """A stabilization of seed ``seed`` with the benchmark's sizes; one curve row per step."""
    values = dict(
        steps=steps,
        beta=args.beta,
        lam=0.0,
        seed=seed,
        phase="stabilize",
        run_name=f"bench/seed{seed}",
        batch_size=args.batch_size,
        latent_dim=args.latent_dim,
        checkpoint_every=steps + 1,
        log_every=1,
        device=args.device,
        precision=args.precision,
        channels_last=True,
        threads=args.threads,
    )
    return TrainSettings(**(values | overrides))


def train_runs(
    images: np.ndarray, settings: list[TrainSettings], workdir: Path, mode: str | None
) -> tuple[float, list[Path]]:
    """Train ``settings`` as one pack (``mode``) or one after another (``mode=None``); return
    the seconds of the training loops (from the summaries) and the run folders."""
    folders = [workdir / f"seed{s.seed}" for s in settings]
    members = [
        PackMember(s, f / "model.pt", f / "curve.csv", f / "run.json", f / "progress")
        for s, f in zip(settings, folders, strict=True)
    ]
    groups = [members] if mode is not None else [[m] for m in members]
    seconds = 0.0
    for group in groups:
        summary = train_pack(group, images, mode=mode, progress_interval=3600.0)[0]
        seconds += group[0].settings.steps / summary["steps_per_second"]
    return seconds, folders


def curve_differences(reference: list[Path], packed: list[Path]) -> tuple[float, float]:
    """Largest |Δloss| between each member's per-step loss and its solo run's, absolute and
    relative to the solo loss."""
    absolute = relative = 0.0
    for a, b in zip(reference, packed, strict=True):
        solo_loss = pd.read_csv(a / "curve.csv")["loss"].to_numpy()
        pack_loss = pd.read_csv(b / "curve.csv")["loss"].to_numpy()
        difference = np.abs(solo_loss - pack_loss)
        absolute = max(absolute, float(difference.max()))
        relative = max(relative, float((difference / np.abs(solo_loss)).max()))
    return absolute, relative


def compare(args: argparse.Namespace, images: np.ndarray) -> None:
    """A pack of ``args.pack`` against its runs trained solo, one after another."""
    settings = [run_settings(args, seed, args.steps) for seed in range(args.pack)]
    warmup = [run_settings(args, seed, args.warmup) for seed in range(args.pack)]
    model_steps = args.pack * args.steps
    print(f"{'':18s}{'seconds':>10s}{'model-steps/s':>15s}{'max |Δloss|':>14s}{'max rel':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for mode in (None, *PACK_MODES):
            train_runs(images, warmup, work / f"warmup-{mode}", mode)
        solo_seconds, solo = train_runs(images, settings, work / "solo", None)
        label = f"{args.pack} solo runs"
        print(f"{label:18s}{solo_seconds:10.1f}{model_steps / solo_seconds:15.2f}")
        for mode in PACK_MODES:
            seconds, packed = train_runs(images, settings, work / mode, mode)
            absolute, relative = curve_differences(solo, packed)
            label = f"pack of {args.pack}, {mode}"
            print(
                f"{label:18s}{seconds:10.1f}{model_steps / seconds:15.2f}"
                f"{absolute:14.3g}{relative:10.2g}   ({solo_seconds / seconds:.2f}× solo)"
            )


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocation on a CUDA device since the last reset, or this process's peak resident
    set (Linux ru_maxrss, in kB) on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sweep(
    device: str = "auto",
    ks: tuple[int, ...] = SWEEP_KS,
    steps: int = 100,
    warmup: int = 10,
    batch_size: int = 64,
    latent_dim: int = 15,
    threads: int = 1,
    precision: str = "fp32",
    images: np.ndarray | None = None,
) -> list[dict]:
    """For each pack size K, mode and (on CUDA) CUDA graphs off/on: model-steps/s of a pack
    trained ``steps`` steps (after an untimed pack of ``warmup`` steps; a CUDA graph is
    captured in each), the peak memory, and the projected device-hours of the paper grid at
    that rate. One row (dict) per configuration."""
    resolved = select_device(device)
    images = synthetic_images(4096, 1) if images is None else images
    args = argparse.Namespace(
        beta=8.0,
        batch_size=batch_size,
        latent_dim=latent_dim,
        device=str(resolved),
        precision=precision,
        threads=threads,
    )
    graphs = (False, True) if resolved.type == "cuda" else (False,)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            for mode in PACK_MODES:
                if k == 1 and mode == "vmap":
                    continue  # a pack of one runs the solo path in either mode
                for cuda_graphs in graphs:
                    folder = Path(tmp) / f"k{k}-{mode}-{cuda_graphs}"
                    started = time.perf_counter()
                    if resolved.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(resolved)
                    for part, count in (("warmup", warmup), ("timed", steps)):
                        runs = [
                            run_settings(args, seed, count, cuda_graphs=cuda_graphs)
                            for seed in range(k)
                        ]
                        seconds, _ = train_runs(images, runs, folder / part, mode)
                    rate = k * steps / seconds
                    rows.append(
                        {
                            "K": k,
                            "mode": mode,
                            "cuda_graphs": cuda_graphs,
                            "model_steps_per_s": rate,
                            "peak_memory_mb": peak_memory_mb(resolved),
                            "grid_hours": PAPER_GRID_STEPS / rate / 3600,
                            "wall_s": time.perf_counter() - started,
                        }
                    )
                    print(format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    graphs = "graphs" if row["cuda_graphs"] else "eager"
    return (
        f"K={row['K']:3d} {row['mode']:5s} {graphs:6s} {row['model_steps_per_s']:10.1f} "
        f"model-steps/s  peak {row['peak_memory_mb']:8.0f} MB  paper grid "
        f"{row['grid_hours']:9.1f} h"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch)")
    parser.add_argument("--pack", type=int, default=4, help="K of the comparison")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    parser.add_argument("--images", type=int, default=20_000, help="synthetic dataset size")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=15)
    parser.add_argument("--beta", type=float, default=8.0)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--sweep", action="store_true", help="sweep K instead of comparing")
    parser.add_argument("--ks", type=int, nargs="+", default=list(SWEEP_KS), help="sweep's K")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    args.device = str(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, threads {args.threads}, torch {torch.__version__}, batch "
        f"{args.batch_size}, latent {args.latent_dim}, {args.steps} timed steps",
        flush=True,
    )
    images = synthetic_images(args.images, 1)
    if args.sweep:
        sweep(
            args.device,
            tuple(args.ks),
            steps=args.steps,
            warmup=args.warmup,
            batch_size=args.batch_size,
            latent_dim=args.latent_dim,
            threads=args.threads,
            precision=args.precision,
            images=images,
        )
    else:
        compare(args, images)


if __name__ == "__main__":
    main()
