"""Time one model's full evaluation (all metrics on 15,000 images) and each of its phases.

The dataset has the real dSprites factor grid (3 × 6 × 40 × 32 × 32 = 737,280 rows, 64 × 64 × 1)
in the prepared on-disk format. Its images.npy is a sparse memory-mapped file in which only the
rows the evaluation reads are rendered (with the procedural dSprites), so the benchmark needs
neither the download nor the 3 GB render, and the evaluation does exactly the I/O and compute it
does on the real data. The model is a randomly initialised VAE of the paper's architecture.

    python benchmarks/bench_evaluate.py --threads 2

prints the end-to-end time of ``evaluate_checkpoint`` with the paper's scores only (scoring the
encoder mean alone, then the mean and the sampled representation, then both with their
permutation null of 19 shuffles, and the null's cost as a ratio), then with DCI and the
FactorVAE score too (their samples: ``--dci``, ``--factor-vae``; ``--no-other-scores`` skips
that run), and the time of each phase measured on its own: encode (μ of all evaluation
images), MI/MIG, SAP (L × K LinearSVC fits), NLL (encode and decode of all evaluation images),
DCI and the FactorVAE score of the mean. The demo's sizes:

    python benchmarks/bench_evaluate.py --num-train 1500 --num-test 500 --latent-dim 8 \
        --dci 300 150 --factor-vae 16 100 50 1000

Wall times depend on what else runs on the machine; the CPU times (all threads of this process)
much less.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from lambdabeta import metrics, procedural
from lambdabeta.evaluate import evaluate_checkpoint
from lambdabeta.evaluation.passes import (
    encode_means,
    evaluation_images,
    image_encoder,
    load_evaluation_model,
    reconstruction_nll,
)
from lambdabeta.evaluation.settings import EvaluationSettings
from lambdabeta.evaluation.split import IMAGES_STREAM, evaluation_stream, sample_evaluation_indices
from lambdabeta.io import write_json
from lambdabeta.loader import dataset_digest, load_prepared
from lambdabeta.model import VAE, save_model


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads and SAP fits")
    parser.add_argument("--num-train", type=int, default=10000)
    parser.add_argument("--num-test", type=int, default=5000)
    parser.add_argument("--num-bins", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--latent-dim", type=int, default=15)
    parser.add_argument("--sap-c", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument(
        "--dci", type=int, nargs=2, default=[None, None], metavar=("TRAIN", "TEST"),
        help="DCI's sample (default: all evaluation images, disentanglement_lib's defaults)",
    )  # fmt: skip
    parser.add_argument(
        "--factor-vae", type=int, nargs=4, default=[64, 10000, 5000, 10000],
        metavar=("BATCH", "TRAIN", "EVAL", "VARIANCE"),
        help="the FactorVAE score's sample (default: disentanglement_lib's)",
    )  # fmt: skip
    parser.add_argument(
        "--no-other-scores", action="store_true",
        help="time DCI and FactorVAE as phases only, not end to end",
    )  # fmt: skip
    return parser.parse_args()


def make_dataset(directory: Path, rows: np.ndarray) -> Path:
    """A prepared dSprites-grid dataset in which only ``rows`` are rendered."""
    values = procedural.full_factor_values()
    sizes = tuple(len(v) for v in values.values())
    num_images = int(np.prod(sizes))
    directory.mkdir(parents=True, exist_ok=True)
    images = np.lib.format.open_memmap(
        directory / "images.npy", mode="w+", dtype=np.uint8, shape=(num_images, 64, 64, 1)
    )
    rows = np.sort(rows)
    classes = np.stack(np.unravel_index(rows, sizes), axis=1)
    images[rows, :, :, 0] = procedural.render(
        classes[:, 0],
        *(values[name][classes[:, k]] for k, name in enumerate(procedural.FACTOR_NAMES) if k),
        foreground=255,
    )
    images.flush()
    del images
    grid = np.stack(np.unravel_index(np.arange(num_images), sizes), axis=1).astype(np.int16)
    np.save(directory / "factors.npy", grid)
    write_json(
        directory / "meta.json",
        {
            "name": "dsprites_grid",
            "factor_names": list(procedural.FACTOR_NAMES),
            "factor_sizes": list(sizes),
            "num_images": num_images,
            "image_shape": [64, 64, 1],
            # what prepare records, so that the evaluation checks it as it would a real one
            "digest": dataset_digest(directory),
        },
    )
    return directory


def make_curve(path: Path, steps: int = 5000, log_every: int = 500) -> Path:
    ends = np.arange(log_every, steps + 1, log_every)
    pd.DataFrame(
        {"step": ends, "bce": 30.0, "steps_in_row": log_every, "loss": 40.0, "kl": 10.0}
    ).to_csv(path, index=False)
    return path


def timed(label: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Run ``function``; print its wall time and the CPU time of this process (all threads)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    print(f"  {label:<40s} wall {seconds:7.2f} s   cpu {cpu_seconds:7.2f} s", flush=True)
    return result, seconds


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="    %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench_evaluate_") as scratch:
        run(args, args.workdir or Path(scratch))


def run(args: argparse.Namespace, workdir: Path) -> None:
    num_images = int(np.prod(procedural.FULL_FACTOR_SIZES))
    # the images evaluate_checkpoint draws for a run of seed 0
    train_rows, test_rows = sample_evaluation_indices(
        num_images, args.num_train, args.num_test, evaluation_stream(args.seed, 0, IMAGES_STREAM)
    )
    rows = np.concatenate([train_rows, test_rows])

    print(f"setup in {workdir} (not timed)")
    dataset_dir = make_dataset(workdir / "dsprites_grid", rows)
    torch.manual_seed(args.seed)
    model_path = workdir / "model.pt"
    save_model(model_path, VAE(in_channels=1, latent_dim=args.latent_dim), {"benchmark": True})
    curve = make_curve(workdir / "curve.csv")

    print(
        f"evaluate_checkpoint: {args.num_train} + {args.num_test} images, m = {args.latent_dim}, "
        f"{args.threads} threads, device {args.device}, torch {torch.__version__}"
    )
    totals = {}
    dci = dict(zip(("num_train", "num_test"), args.dci, strict=True))
    factor_vae = dict(
        zip(("batch_size", "num_train", "num_eval", "num_variance_estimate"), args.factor_vae,
            strict=True)
    )  # fmt: skip
    off = {"dci": {"num_train": 0}, "factor_vae": {"num_train": 0}}
    on = {"dci": dci, "factor_vae": factor_vae}
    runs = [(("mean",), 0, off), (("mean", "sampled"), 0, off), (("mean", "sampled"), 19, off)]
    if not args.no_other_scores:
        runs.append((("mean", "sampled"), 19, on))
    for representations, shuffles, others in runs:
        settings = EvaluationSettings(
            **others,
            num_train=args.num_train,
            num_test=args.num_test,
            num_bins=args.num_bins,
            sap_c=args.sap_c,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            representations=representations,
            null_shuffles=shuffles,
        )
        scored = "paper's scores" if others is off else "+ DCI, FactorVAE"
        _, total = timed(
            f"end to end, {'+'.join(representations)}, {shuffles} shuffles, {scored}",
            evaluate_checkpoint,
            model_path,
            dataset_dir,
            curve,
            settings,
            threads=args.threads,
        )
        totals[representations, shuffles, others is on] = total
    both = totals[("mean", "sampled"), 19, False] / totals[("mean", "sampled"), 0, False]
    print(f"  the permutation null costs {both:.2f}× an evaluation without it")
    if not args.no_other_scores:
        added = totals[("mean", "sampled"), 19, True] - totals[("mean", "sampled"), 19, False]
        print(f"  DCI and the FactorVAE score add {added:.1f} s per model (both representations)")

    print("phases, measured one by one")
    dataset = load_prepared(dataset_dir)
    device = torch.device(args.device)
    model = load_evaluation_model(model_path, device)
    images = evaluation_images(dataset.images, rows, device)
    positions = np.arange(rows.size)
    train_factors, test_factors = dataset.factors[train_rows], dataset.factors[test_rows]
    codes, _ = timed(
        "encode (μ of all images)", encode_means, model, images, positions, args.batch_size
    )
    train_codes, test_codes = codes[: args.num_train], codes[args.num_train :]

    def mig() -> float:
        mi = metrics.discrete_mutual_information(train_codes, train_factors, args.num_bins)
        return float(metrics.mig_per_factor(mi, metrics.discrete_entropy(train_factors)).mean())

    timed("MI matrix + MIG + entropies", mig)
    num_fits = args.latent_dim * len(procedural.FULL_FACTOR_SIZES)
    timed(
        f"SAP ({num_fits} LinearSVC fits)",
        metrics.sap_matrix,
        train_codes,
        train_factors,
        test_codes,
        test_factors,
        C=args.sap_c,
        n_jobs=args.threads,
    )
    timed(
        "NLL (encode + decode all images)",
        reconstruction_nll,
        model,
        images,
        positions,
        args.batch_size,
    )
    # A random model's latents carry no factor information, which makes the classifiers' job
    # easy; a code holding every factor (one factor per latent, plus noise) is the harder case.
    rng = np.random.default_rng(args.seed)
    informative = np.resize(dataset.factors[rows].T, (args.latent_dim, rows.size)).T
    informative = informative + rng.normal(scale=0.5, size=informative.shape)
    timed(
        "SAP on an informative code",
        metrics.sap_matrix,
        informative[: args.num_train],
        train_factors,
        informative[args.num_train :],
        test_factors,
        C=args.sap_c,
        n_jobs=args.threads,
    )
    dci_train = args.dci[0] or args.num_train
    dci_test = args.dci[1] or args.num_test
    timed(
        f"DCI ({len(procedural.FULL_FACTOR_SIZES)} boosted-tree fits, {dci_train} + {dci_test})",
        metrics.dci,
        train_codes[:dci_train],
        train_factors[:dci_train],
        test_codes[:dci_test],
        test_factors[:dci_test],
        random_state=args.seed,
        n_jobs=args.threads,
    )

    means_of = image_encoder(model, device, args.batch_size)

    def encode(batch: np.ndarray) -> np.ndarray:
        # A random model's means hardly vary, so the score would prune every latent and stop
        # after the variance estimate; scaled up, every latent votes and the timing is that of a
        # trained model (encoding is the cost; the votes and the classifier are negligible).
        return 1e3 * means_of(batch)

    size, votes_train, votes_eval, variance = args.factor_vae
    timed(
        f"FactorVAE ({size * (votes_train + votes_eval) + variance} images encoded)",
        metrics.factor_vae_score,
        encode,
        dataset.factor_sizes,
        dataset.images_for,
        batch_size=size,
        num_train=votes_train,
        num_eval=votes_eval,
        num_variance_estimate=variance,
        random_state=np.random.RandomState(args.seed),
    )
    paper = totals[("mean", "sampled"), 19, False]
    print(f"total end to end, the paper's scores: {paper:.1f} s wall (target < 60 s)")


if __name__ == "__main__":
    main()
