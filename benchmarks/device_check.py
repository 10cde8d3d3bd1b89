"""Every accelerated path of the pipeline measured in one command, printed as one table.

    python benchmarks/device_check.py                   # on a GPU machine: the full check
    python benchmarks/device_check.py --small           # reduced sizes (the test suite, on CPU)
    python benchmarks/device_check.py --json out.json   # the table as JSON too

Rows:

- training steps/s at batch 64 of the pipeline's trainer for each device option (eager,
  channels_last, CUDA graphs, torch.compile, bf16) beside the eager DataLoader loop, in one run;
  options a device cannot run (CUDA graphs and bf16 on a CPU) are reported as skipped;
- the agreement of 20 training steps on the device with the same 20 steps on the CPU (largest
  relative difference of the loss curve);
- the time of one model's evaluation (all metrics);
- the time of one step of the linear study's AdamW over all restarts (n = 100, 1,250 restarts);
- packed training: model-steps/s, peak memory and the paper grid's projected device-hours for
  packs of K ∈ {1, 2, 4, …, 64} runs, in each pack mode, eager and (on CUDA) with CUDA graphs;
- the projected device-hours of the paper grid at the best measured training rate, one run at a
  time.

On a machine without a GPU the same code runs on the CPU (with ``--small``, at reduced sizes), so
the check cannot rot between the sessions that have a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent / "workflow" / "scripts"))
sys.path.insert(0, str(BENCHMARKS))

import bench_packed  # noqa: E402
from bench_train import PAPER_GRID_STEPS, BaselineLoop, synthetic_images  # noqa: E402

from lambdabeta import linear  # noqa: E402
from lambdabeta.devices import select_device  # noqa: E402
from lambdabeta.evaluate import evaluate_checkpoint  # noqa: E402
from lambdabeta.evaluation.settings import EvaluationSettings  # noqa: E402
from lambdabeta.loader import dataset_digest  # noqa: E402
from lambdabeta.model import VAE, save_model  # noqa: E402
from lambdabeta.settings import TrainSettings  # noqa: E402
from lambdabeta.training import train  # noqa: E402

# The training options of the table: (label, TrainSettings overrides, needs CUDA)
TRAINING_OPTIONS = (
    ("eager", {"channels_last": False}, False),
    ("channels_last", {"channels_last": True}, False),
    ("cuda_graphs", {"channels_last": True, "cuda_graphs": True}, True),
    ("compile", {"channels_last": True, "compile": True}, False),
    ("bf16", {"channels_last": True, "precision": "bf16"}, True),
)


@dataclass
class Row:
    """One line of the table."""

    check: str
    setting: str
    value: float | None
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    """How much work each check does (full on a GPU, reduced with --small)."""

    images: int
    timed_steps: int
    warmup_steps: int
    agreement_steps: int
    num_train: int
    num_test: int
    linear_n: int
    linear_restarts: int
    linear_steps: int
    pack_sizes: tuple[int, ...]
    pack_steps: int
    pack_batch: int
    compile: bool = True  # torch.compile's warm-up alone takes tens of seconds on a CPU

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            20_000, 300, 20, 20, 10_000, 5_000, 100, 1_250, 20, bench_packed.SWEEP_KS, 50, 64
        )

    @classmethod
    def small(cls) -> Sizes:
        return cls(512, 6, 2, 5, 300, 100, 20, 16, 3, (1, 2), 2, 8, compile=False)


def _train_settings(steps: int, device: str, seed: int = 0, **overrides: Any) -> TrainSettings:
    values = {
        "steps": steps,
        "beta": 8.0,
        "lam": 0.0,
        "seed": seed,
        "phase": "stabilize",
        "run_name": "device_check",
        "batch_size": 64,
        "latent_dim": 15,
        "checkpoint_every": steps + 1,
        "log_every": 1,
        "device": device,
        "channels_last": False,
    }
    return TrainSettings(**(values | overrides))


def _train_once(settings: TrainSettings, images: np.ndarray, out: Path) -> dict[str, Any]:
    return train(
        settings,
        images,
        model_path=out / "model.pt",
        log_path=out / "curve.csv",
        summary_path=out / "summary.json",
        progress_dir=out / "progress",
        progress_interval=3600.0,
    )


def training_rows(images: np.ndarray, device: str, sizes: Sizes, workdir: Path) -> list[Row]:
    """Steps/s of each training option and of the DataLoader loop (after a warm-up run)."""
    rows = []
    cuda = device.startswith("cuda")
    for label, overrides, needs_cuda in TRAINING_OPTIONS:
        if needs_cuda and not cuda:
            rows.append(Row("train steps/s", label, None, "steps/s", "skipped: needs CUDA"))
            continue
        if overrides.get("compile") and not sizes.compile:
            rows.append(Row("train steps/s", label, None, "steps/s", "skipped at small sizes"))
            continue
        try:
            warm = _train_settings(sizes.warmup_steps, device, **overrides)
            _train_once(warm, images, workdir / f"{label}-warmup")
            timed = _train_settings(sizes.timed_steps, device, seed=1, **overrides)
            summary = _train_once(timed, images, workdir / label)
            rows.append(Row("train steps/s", label, summary["steps_per_second"], "steps/s"))
        except Exception as error:  # one failing option must not hide the others' numbers
            rows.append(Row("train steps/s", label, None, "steps/s", f"failed: {error}"[:200]))
    arguments = argparse.Namespace(latent_dim=15, batch_size=64, beta=8.0, lam=0.0)
    baseline = BaselineLoop(images, arguments, torch.device(device))
    baseline.run(sizes.warmup_steps)
    seconds = baseline.run(sizes.timed_steps)
    rows.append(Row("train steps/s", "DataLoader eager", sizes.timed_steps / seconds, "steps/s"))
    return rows


def agreement_row(images: np.ndarray, device: str, sizes: Sizes, workdir: Path) -> Row:
    """Largest relative difference between the loss curves of the same run on device and CPU."""
    curves = []
    for where in (device, "cpu"):
        settings = _train_settings(sizes.agreement_steps, where, seed=2)
        _train_once(settings, images, workdir / f"agree-{where}")
        curves.append(
            np.loadtxt(
                workdir / f"agree-{where}" / "curve.csv", delimiter=",", skiprows=1, usecols=1
            )
        )
    on_device, on_cpu = curves
    difference = float(np.max(np.abs(on_device - on_cpu) / np.abs(on_cpu)))
    note = "same device: 0 expected" if device == "cpu" else ""
    return Row(
        f"{sizes.agreement_steps} steps {device} vs cpu", "max rel. loss diff", difference, "", note
    )


def evaluation_row(device: str, sizes: Sizes, workdir: Path) -> Row:
    """Wall seconds of one model's full evaluation (a random model on random images)."""
    dataset = workdir / "eval-data"
    dataset.mkdir()
    # a whole factor grid (as every prepared dataset is) with room for the evaluation images
    factor_sizes = [-(-(sizes.num_train + sizes.num_test) // 64), 8, 8]
    count = int(np.prod(factor_sizes))
    factors = np.stack(np.unravel_index(np.arange(count), factor_sizes), 1)
    np.save(dataset / "images.npy", synthetic_images(count, 1, seed=3))
    np.save(dataset / "factors.npy", factors.astype(np.int64))
    meta = {
        "name": "device_check",
        "factor_names": ["a", "b", "c"],
        "factor_sizes": factor_sizes,
        "num_images": count,
        "image_shape": [64, 64, 1],
    }
    meta["digest"] = dataset_digest(dataset)  # what prepare records, checked as it would be
    (dataset / "meta.json").write_text(json.dumps(meta))
    torch.manual_seed(0)
    save_model(workdir / "eval-model.pt", VAE(1, 15), {})
    curve = workdir / "eval-curve.csv"
    curve.write_text("step,bce,steps_in_row\n10,1.0,10\n")
    start = time.perf_counter()
    evaluate_checkpoint(
        workdir / "eval-model.pt",
        dataset,
        curve,
        EvaluationSettings(
            num_train=sizes.num_train, num_test=sizes.num_test, bce_window=10, device=device
        ),
    )
    seconds = time.perf_counter() - start
    setting = f"{sizes.num_train} + {sizes.num_test} images"
    return Row("evaluation of one model", setting, seconds, "s")


REPEATS = 3
"""Timings of short runs repeated, the fastest kept (``linear_adamw_row``)."""


def linear_adamw_row(device: str, sizes: Sizes) -> Row:
    """Seconds per AdamW step of the linear study (the paper config's formulation) over all
    restarts of a 5 × 5 (β, λ) grid: two runs that differ only in their step count."""
    n, m, s = sizes.linear_n, 10, 5
    instance = linear.make_instance(n, m, s, 0.05, (0.1, 1.0), seed=0)
    per_point = max(1, sizes.linear_restarts // 25)
    grid = linear.grid_entries(
        instance,
        m,
        [1, 4, 8, 16, 32],
        [0, 2, 4, 6, 8],
        per_point,
        seed=1,
        init="authors",
        method="adamw",
    )

    def seconds(steps: int) -> float:
        start = time.perf_counter()
        linear.run_adamw(
            instance,
            grid.init,
            grid.beta,
            grid.lam,
            steps=steps,
            lr=1e-3,
            weight_decay=0.01,
            grad_clip=(2.0, 3.0),
            parameterization=linear.parameterization_named("authors", 5e-5),
            report="best",
            device=device,
        )
        return time.perf_counter() - start

    seconds(1)  # warm-up: first-call set-up of kernels
    # the fastest of a few runs of each length: a difference of single timings of short runs
    # can come out negative on a loaded machine
    longer = min(seconds(sizes.linear_steps + 1) for _ in range(REPEATS))
    shorter = min(seconds(1) for _ in range(REPEATS))
    per_step = (longer - shorter) / sizes.linear_steps
    restarts = len(grid.table)
    return Row("linear AdamW step", f"n = {n}, {restarts} restarts", per_step, "s/step")


def packed_rows(images: np.ndarray, device: str, sizes: Sizes) -> list[Row]:
    """The pack-size sweep of ``bench_packed.sweep``, one row per (K, mode, graphs)."""
    rows = []
    for result in bench_packed.sweep(
        device=device,
        ks=sizes.pack_sizes,
        steps=sizes.pack_steps,
        warmup=sizes.warmup_steps,
        batch_size=sizes.pack_batch,
        images=images,
    ):
        graphs = "graphs" if result["cuda_graphs"] else "eager"
        setting = f"K = {result['K']}, {result['mode']}, {graphs}, batch {sizes.pack_batch}"
        note = f"peak {result['peak_memory_mb']:.0f} MB; paper grid {result['grid_hours']:.1f} h"
        rows.append(
            Row("packed model-steps/s", setting, result["model_steps_per_s"], "model-steps/s", note)
        )
    return rows


def projection_row(rows: list[Row], device: str) -> Row:
    """Device-hours of the paper grid at the best measured rate of our trainer, solo runs."""
    rates = [
        row.value
        for row in rows
        if row.check == "train steps/s"
        and row.value is not None
        and row.setting != "DataLoader eager"
    ]
    unit = "GPU-hours" if device.startswith("cuda") else "CPU-hours"
    best = max(rates)
    return Row(
        "paper grid, one run at a time",
        f"{PAPER_GRID_STEPS:,} steps at best rate",
        PAPER_GRID_STEPS / best / 3600,
        unit,
    )


def check(device: str, sizes: Sizes) -> list[Row]:
    """Every row of the table, in order."""
    images = synthetic_images(sizes.images, 1)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="device_check_") as scratch:
        workdir = Path(scratch)
        steps: list[Callable[[], list[Row]]] = [
            lambda: training_rows(images, device, sizes, workdir),
            lambda: [agreement_row(images, device, sizes, workdir)],
            lambda: [evaluation_row(device, sizes, workdir)],
            lambda: [linear_adamw_row(device, sizes)],
            lambda: packed_rows(images, device, sizes),
        ]
        for step in steps:
            rows.extend(step())
    rows.append(projection_row(rows, device))
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| check | setting | value | unit | note |", "|---|---|---|---|---|"]
    for row in rows:
        value = "—" if row.value is None else f"{row.value:.4g}"
        lines.append(f"| {row.check} | {row.setting} | {value} | {row.unit} | {row.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--small", action="store_true", help="reduced sizes (CPU test)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(select_device(args.device))
    sizes = Sizes.small() if args.small else Sizes.full()
    start = time.perf_counter()
    print(
        f"device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.startswith("cuda") else "")
        + f", torch {torch.__version__}, {'small' if args.small else 'full'} sizes",
        flush=True,
    )
    rows = check(device, sizes)
    print(format_table(rows))
    print(f"device check done in {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))
    return rows


if __name__ == "__main__":
    main()
