"""How often every deep claim says "reproduced" on simulated tables, with and without an effect.

For each claim that reads the deep tables, each of its scenarios (``lambdabeta.calibration``:
tables where the claim is false at the boundary its test must hold, and tables with a clear
planted effect), each noise (normal, t with 3 degrees of freedom, skewed up and down) and each
seed count, it judges ``--tables`` random tables with the claim's own registered judge and
prints the fraction judged "reproduced": the false "reproduced" rate where there is no effect,
the power where there is one. A summary gives per claim and seed count the largest false rate
over its null scenarios and noises, and the smallest power.

    python benchmarks/bench_claims_calibration.py                      # 1,000 tables per cell
    python benchmarks/bench_claims_calibration.py --tables 200 --claims deep.nll_rises_with_beta
    python benchmarks/bench_claims_calibration.py --paired-test sign_flip

The cells are independent and run on ``--workers`` processes; every cell draws its tables from
its own seeded generator, so the numbers do not depend on the worker count.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from lambdabeta.calibration.scenarios import SCENARIOS, calibrate
from lambdabeta.calibration.simulation import NOISES
from lambdabeta.claims import ClaimSettings


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", type=int, default=1000, help="random tables per cell without an effect"
    )
    parser.add_argument(
        "--power-tables", type=int, default=None, help="per cell with an effect (default: --tables)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--noises", nargs="+", default=list(NOISES), choices=list(NOISES))
    parser.add_argument("--claims", nargs="+", default=None, help="claim ids (default: all)")
    parser.add_argument("--paired-test", default="t", choices=["t", "sign_flip"])
    parser.add_argument("--level", type=float, default=0.025)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def cell(job: tuple[int, int, str, int, str, float]) -> tuple[int, int, str, float]:
    index, seeds, noise, tables, paired_test, level = job
    settings = ClaimSettings(paired_test=paired_test, level=level)
    scenario = SCENARIOS[index]
    # each cell's own stream: the same numbers whichever worker runs it, in whatever order
    stream = zlib.crc32(f"{scenario.claim_id}|{scenario.name}|{seeds}|{noise}".encode())
    return index, seeds, noise, calibrate(scenario, seeds, noise, tables, settings, stream)


def main() -> None:
    args = parse_args()
    chosen = [
        i for i, s in enumerate(SCENARIOS) if args.claims is None or s.claim_id in args.claims
    ]
    jobs = [
        (
            i,
            seeds,
            noise,
            args.power_tables or args.tables if SCENARIOS[i].effect else args.tables,
            args.paired_test,
            args.level,
        )
        for i in chosen
        for seeds in args.seeds
        for noise in args.noises
    ]
    start = time.perf_counter()
    results: dict[tuple[int, int, str], float] = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for index, seeds, noise, rate in pool.map(cell, jobs):
            results[index, seeds, noise] = rate
    print(
        f"claims calibration: {args.tables} tables per cell without an effect, "
        f"{args.power_tables or args.tables} with one, test {args.paired_test}, level "
        f"{args.level:g}, {time.perf_counter() - start:.0f} s\n"
    )
    print("fraction judged 'reproduced' (no effect: false rate; effect: power)\n")
    header = f"{'claim':40s} {'scenario':34s} {'effect':6s} {'seeds':>5s} " + " ".join(
        f"{noise:>11s}" for noise in args.noises
    )
    print(header)
    print("-" * len(header))
    for i in chosen:
        scenario = SCENARIOS[i]
        for seeds in args.seeds:
            rates = " ".join(f"{100 * results[i, seeds, n]:10.1f}%" for n in args.noises)
            print(
                f"{scenario.claim_id:40s} {scenario.name:34s} {scenario.effect!s:6s} "
                f"{seeds:5d} {rates}"
            )
    print(
        "\nsummary: largest false 'reproduced' rate over the null scenarios and noises, "
        "smallest power over the planted effects\n"
    )
    print(
        f"{'claim':40s} "
        + " ".join(f"{'false @' + str(n):>10s}" for n in args.seeds)
        + " "
        + " ".join(f"{'power @' + str(n):>10s}" for n in args.seeds)
    )
    for claim_id in dict.fromkeys(SCENARIOS[i].claim_id for i in chosen):
        mine = [i for i in chosen if SCENARIOS[i].claim_id == claim_id]
        nulls = [i for i in mine if not SCENARIOS[i].effect]
        effects = [i for i in mine if SCENARIOS[i].effect]
        false = [max(results[i, n, x] for i in nulls for x in args.noises) for n in args.seeds]
        power = [min(results[i, n, x] for i in effects for x in args.noises) for n in args.seeds]
        print(
            f"{claim_id:40s} "
            + " ".join(f"{100 * v:9.1f}%" for v in false)
            + " "
            + " ".join(f"{100 * v:9.1f}%" for v in power)
        )


if __name__ == "__main__":
    main()
