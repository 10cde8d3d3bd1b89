"""Training speed: the pipeline's trainer against a plain eager PyTorch loop with a DataLoader.

Both train the same Table 1 VAE with the same λβ loss at the same batch size on a synthetic
64 × 64 × C uint8 dataset, on the same device and thread count, in the same process:

(a) ours: ``lambdabeta.training.train`` (uint8 images on the device, seeded index/noise generators,
    fused Adam, loss terms kept on the device, optional channels_last / compile / CUDA graphs);
(b) baseline: a per-item ``torch.utils.data.Dataset`` returning float tensors,
    ``DataLoader(batch_size, shuffle=True)``, default Adam, ``loss.item()`` every step.

The timed steps run in short chunks alternating (a) and (b), so that load from other processes
on the machine hits both alike. For each chunk the share of the CPUs that other processes used
meanwhile is recorded (Linux /proc/stat); the median, best and overall rates are reported, and
the median over "quiet" chunks (others below ``--quiet``), with the projected device-hours of the
paper's full grid.

    python benchmarks/bench_train.py --threads 2                   # CPU, config defaults
    python benchmarks/bench_train.py --threads 2 --channels-last
    python benchmarks/bench_train.py --device cuda --cuda-graphs --precision bf16
    python benchmarks/bench_train.py --threads 2 --adaptive 7   # + (c): λ set by the controller

(c), with ``--adaptive NATS``: ours as a finetune whose λ the adaptive controller
(``lambdabeta.control``) sets to hold a KL rate of NATS, in the same alternation: the price of
the controller per step against (a).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from lambdabeta.devices import select_device
from lambdabeta.loss import lambda_beta_loss
from lambdabeta.model import VAE
from lambdabeta.settings import TrainSettings
from lambdabeta.training import train

# The paper's grid (Table 2): datasets × β values × seeds × (stabilize + |λ| finetunes) steps.
PAPER_GRID_STEPS = 3 * 8 * 10 * (150_000 + 5 * 50_000)


class PerItemImages(Dataset):
    """One float C × H × W image in [0, 1] per item, the way reference training scripts do it."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.images[index]).permute(2, 0, 1).float() / 255.0


def synthetic_images(count: int, channels: int, seed: int = 0) -> np.ndarray:
    """Random binary uint8 images (values 0/255), N × 64 × 64 × C."""
    rng = np.random.default_rng(seed)
    return (rng.random((count, 64, 64, channels)) < 0.2).astype(np.uint8) * 255


class BaselineLoop:
    """The eager DataLoader loop; ``run(steps)`` trains that many more steps and times them."""

    def __init__(self, images: np.ndarray, args: argparse.Namespace, device: torch.device):
        torch.manual_seed(0)
        self.args, self.device = args, device
        self.model = VAE(images.shape[-1], args.latent_dim).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        loader = DataLoader(PerItemImages(images), batch_size=args.batch_size, shuffle=True)
        self.batches = itertools.chain.from_iterable(itertools.repeat(loader))  # epoch after epoch

    def run(self, steps: int) -> float:
        """Seconds taken by ``steps`` training steps."""
        args = self.args
        self._synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            x = next(self.batches).to(self.device)
            noise = torch.randn(x.shape[0], args.latent_dim, device=self.device)
            logits, mu, logvar = self.model(x, noise)
            terms = lambda_beta_loss(logits, x, mu, logvar, beta=args.beta, lam=args.lam)
            self.optimizer.zero_grad()
            terms.loss.backward()
            self.optimizer.step()
            terms.loss.item()
        self._synchronize()
        return time.perf_counter() - start

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class OursLoop:
    """``lambdabeta.training.train``; ``run(steps)`` trains a fresh phase of that many steps."""

    def __init__(
        self,
        images: np.ndarray,
        args: argparse.Namespace,
        workdir: Path,
        controller: dict | None = None,
        init_model: Path | None = None,
    ):
        self.images, self.args, self.workdir, self.runs = images, args, workdir, 0
        # an adaptive finetune (controller set) starts from init_model
        self.controller, self.init_model = controller, init_model

    def run(self, steps: int) -> float:
        """Seconds taken by the training loop of a ``steps``-step phase (setup excluded)."""
        args = self.args
        settings = TrainSettings(
            steps=steps,
            beta=args.beta,
            lam=args.lam,
            seed=self.runs,
            phase="stabilize" if self.controller is None else "finetune",
            run_name="bench",
            batch_size=args.batch_size,
            latent_dim=args.latent_dim,
            checkpoint_every=steps + 1,
            log_every=steps,
            device=args.device,
            precision=args.precision,
            tf32=not args.no_tf32,
            compile=args.compile,
            channels_last=args.channels_last,
            cuda_graphs=args.cuda_graphs,
            threads=args.threads,
            controller=self.controller,
        )
        out = self.workdir / f"{id(self)}-{self.runs}"
        self.runs += 1
        summary = train(
            settings,
            self.images,
            model_path=out / "model.pt",
            log_path=out / "curve.csv",
            summary_path=out / "summary.json",
            progress_dir=out / "progress",
            progress_interval=3600.0,
            init_model=self.init_model,
        )
        return steps / summary["steps_per_second"]


def adaptive_loop(images: np.ndarray, args: argparse.Namespace, workdir: Path) -> OursLoop:
    """Ours as adaptive finetunes, from a model of one stabilize step (any model will do)."""
    start = OursLoop(images, args, workdir / "start")
    start.run(1)
    controller = {
        "target": args.adaptive, "proportional": 0.5, "integral": 0.01, "lambda_min": 1e-3,
        "lambda_max": 1e4, "initial_lambda": 1.0, "ramp_steps": 0, "averaging": 0.99,
    }  # fmt: skip
    model = next((workdir / "start").glob("*/model.pt"))
    return OursLoop(images, args, workdir, controller=controller, init_model=model)


def machine_busy_seconds() -> float:
    """CPU-seconds all processes of the machine have been busy since boot (Linux /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    jiffies = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = jiffies[3] + jiffies[4]
    return (sum(jiffies) - idle) / os.sysconf("SC_CLK_TCK")


def run_and_watch(loop: BaselineLoop | OursLoop, steps: int) -> tuple[float, float]:
    """Seconds ``loop`` takes for ``steps`` steps, and the share of the machine's CPUs that
    other processes used meanwhile (their busy time over wall time × CPU count)."""
    busy, own, wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
    taken = loop.run(steps)
    others_busy = (machine_busy_seconds() - busy) - (time.process_time() - own)
    share = max(0.0, others_busy) / ((time.perf_counter() - wall) * (os.cpu_count() or 1))
    return taken, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--steps", type=int, default=200, help="timed steps of each loop")
    parser.add_argument("--chunks", type=int, default=10, help="alternating timed chunks")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before timing")
    parser.add_argument(
        "--quiet", type=float, default=0.1, help="CPU share of other processes in a quiet chunk"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch)")
    parser.add_argument("--images", type=int, default=20_000, help="synthetic dataset size")
    parser.add_argument("--channels", type=int, default=1, help="image channels C")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=15)
    parser.add_argument("--beta", type=float, default=8.0)
    parser.add_argument("--lam", type=float, default=0.0)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--no-tf32", action="store_true", help="disable TF32 on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step")
    parser.add_argument("--channels-last", action="store_true", help="NHWC images and weights")
    parser.add_argument("--cuda-graphs", action="store_true", help="capture the step (CUDA)")
    parser.add_argument(
        "--adaptive", type=float, default=None, metavar="NATS",
        help="also time ours as an adaptive-λ finetune holding this KL rate",
    )  # fmt: skip
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.device = str(device)
    images = synthetic_images(args.images, args.channels)
    switches = {
        name: getattr(args, name)
        for name in ("precision", "compile", "channels_last", "cuda_graphs")
    }
    print(
        f"device {device_name}, threads {args.threads}, torch {torch.__version__}, "
        f"{args.images} images 64×64×{args.channels}, batch {args.batch_size}, "
        f"{args.steps} timed steps in {args.chunks} chunks, ours with {switches}",
        flush=True,
    )

    chunk = max(1, args.steps // args.chunks)
    loops: dict[str, BaselineLoop | OursLoop] = {"baseline": BaselineLoop(images, args, device)}
    with tempfile.TemporaryDirectory() as workdir:
        loops = {"ours": OursLoop(images, args, Path(workdir))} | loops
        if args.adaptive is not None:
            loops["adaptive"] = adaptive_loop(images, args, Path(workdir))
        seconds: dict[str, list[float]] = {name: [] for name in loops}
        others: dict[str, list[float]] = {name: [] for name in loops}
        for loop in loops.values():
            loop.run(args.warmup)
        for _ in range(args.chunks):
            for name, loop in loops.items():
                taken, share = run_and_watch(loop, chunk)
                seconds[name].append(taken)
                others[name].append(share)

    rates = {name: chunk / np.array(times) for name, times in seconds.items()}
    print(f"steps/s per chunk of {chunk} steps, alternating (CPU share other processes used):")
    for name, values in rates.items():
        cells = (f"{v:6.2f} ({o:4.0%})" for v, o in zip(values, others[name], strict=True))
        print(f"  {name:9s}", " ".join(cells))
    quiet = {name: rates[name][np.array(others[name]) < args.quiet] for name in rates}
    columns = ("median", "best", "overall", f"quiet<{args.quiet:.0%}")
    print(f"{'':28s}" + "".join(f"{c:>12s}" for c in columns))
    summary = {}
    labels = {"ours": "ours (lambdabeta train)", "baseline": "baseline (DataLoader)",
              "adaptive": "ours, adaptive λ"}  # fmt: skip
    for name in loops:
        label = labels[name]
        overall = chunk * args.chunks / sum(seconds[name])
        quiet_median = np.median(quiet[name]) if quiet[name].size else np.nan
        summary[name] = (np.median(rates[name]), rates[name].max(), overall, quiet_median)
        print(f"{label:28s}" + "".join(f"{v:12.2f}" for v in summary[name]) + "  steps/s")
    ratios = [a / b for a, b in zip(summary["ours"], summary["baseline"], strict=True)]
    print(f"{'speed-up (ours / baseline)':28s}" + "".join(f"{r:11.2f}×" for r in ratios))
    if "adaptive" in summary:
        ratios = [a / b for a, b in zip(summary["adaptive"], summary["ours"], strict=True)]
        print(f"{'adaptive / static (ours)':28s}" + "".join(f"{r:11.2f}×" for r in ratios))
    quiet_counts = {name: int(values.size) for name, values in quiet.items()}
    print(f"quiet chunks: {quiet_counts} of {args.chunks} each")
    unit = "GPU" if device.type == "cuda" else "CPU"
    print(f"paper grid, {PAPER_GRID_STEPS:,} steps, one job at a time (median rate):")
    for name in ("ours", "baseline"):
        hours = PAPER_GRID_STEPS / summary[name][0] / 3600
        print(f"  {name:9s} {hours:10,.0f} {unit}-hours")


if __name__ == "__main__":
    main()
