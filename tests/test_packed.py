"""Packed training: K runs trained in one process each give their solo run's result, stop alone
on NaN, resume exactly after a kill; in the workflow, pack_size is logistics."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from training_helpers import random_binary_images, tiny_settings
from workflow_runner import snakemake, write_config

from lambdabeta.grid import Run, packs
from lambdabeta.io import job_log
from lambdabeta.loader import DeviceImages
from lambdabeta.loss import lambda_beta_loss
from lambdabeta.model import load_model
from lambdabeta.settings import TrainSettings
from lambdabeta.training import NonFiniteLossError, PackMember, train, train_pack
from lambdabeta.training.checkpoint import CHECKPOINT_FILE
from lambdabeta.training.layouts import MemberWeights, StackedWeights, pack_weights, stack_like
from lambdabeta.training.streams import initial_model, make_generators

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"

# vmap packs sum in another order than solo runs: after the few steps of these tests every
# curve term is within 1e-6 of the row's loss (measured: 5e-8) and every weight within 1e-4
# (measured: 2e-5, AVX2 and AVX-512 kernels alike); loop packs are bitwise equal.
CURVE_RTOL_OF_LOSS = 1e-6
WEIGHT_ATOL = 1e-4


@pytest.fixture(scope="module")
def images():
    return random_binary_images()


def tiny(**overrides) -> TrainSettings:
    return tiny_settings(
        **{"steps": 12, "lr": 1e-3, "checkpoint_every": 4, "log_every": 3} | overrides
    )


def member(folder: Path, settings: TrainSettings, init_model=None) -> PackMember:
    return PackMember(
        settings=settings,
        model_path=folder / "model.pt",
        log_path=folder / "curve.csv",
        summary_path=folder / "run.json",
        progress_dir=folder / "progress",
        init_model=init_model,
    )


def solo(folder: Path, settings: TrainSettings, images, init_model=None) -> dict:
    spec = member(folder, settings, init_model)
    return train(
        settings,
        images,
        model_path=spec.model_path,
        log_path=spec.log_path,
        summary_path=spec.summary_path,
        progress_dir=spec.progress_dir,
        init_model=init_model,
        progress_interval=1e9,
    )


def pack(folders, settings, images, mode, init_model=None) -> list[dict]:
    members = [member(f, s, init_model) for f, s in zip(folders, settings, strict=True)]
    return train_pack(members, images, mode=mode, progress_interval=1e9)


def seed_pack() -> list[TrainSettings]:
    """Three stabilizations: two seeds of β = 4 and one of β = 8."""
    return [
        tiny(seed=0, run_name="tiny/beta4/seed0"),
        tiny(seed=1, run_name="tiny/beta4/seed1"),
        tiny(seed=2, beta=8.0, run_name="tiny/beta8/seed2"),
    ]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_model(folder / "model.pt")[0].state_dict()


def curve(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "curve.csv").drop(columns="seconds")


def assert_same_run(a: Path, b: Path, exact: bool) -> None:
    """Runs ``a`` and ``b`` ended with the same weights and curve: bitwise, or to the stated
    tolerance of vmap packs."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    ca, cb = curve(a), curve(b)
    if exact:
        for name in wa:
            assert torch.equal(wa[name], wb[name]), name
        pd.testing.assert_frame_equal(ca, cb)
        return
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=WEIGHT_ATOL)
    assert ca[["step", "steps_in_row"]].equals(cb[["step", "steps_in_row"]])
    terms = ca.columns.drop(["step", "steps_in_row"])
    worst = (ca[terms] - cb[terms]).abs().max(axis=1) / ca["loss"].abs()
    assert worst.max() <= CURVE_RTOL_OF_LOSS, worst.max()


# ---- a pack gives each member its solo run ---------------------------------------------------


def test_pack_of_one_is_todays_solo_run(tmp_path, images):
    """The solo trainer is a pack of one; its result is, bit for bit, the plain training loop:
    the seeded model, fused Adam, and the run's own index and noise streams."""
    settings = tiny(lam=2.0, steps=7)
    out = tmp_path / "solo"
    solo(out, settings, images)

    model = initial_model(1, 3, seed=0).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    index_gen, noise_gen = make_generators(settings, torch.device("cpu"))
    data = DeviceImages(images, channels_last=True)
    losses = []
    for _ in range(7):
        x = data.batch(torch.randint(len(images), (4,), generator=index_gen))
        noise = torch.randn(4, 3, generator=noise_gen)
        logits, mu, logvar = model(x, noise)
        terms = lambda_beta_loss(logits, x, mu, logvar, beta=4.0, lam=2.0)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        losses.append(terms.loss.item())
    trained = weights(out)
    for name, value in model.state_dict().items():
        assert torch.equal(value, trained[name]), name
    rows = curve(out)
    assert rows["loss"].iloc[0] == pytest.approx(np.mean(losses[:3]), rel=1e-7)


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_each_member_of_a_pack_ends_as_its_solo_run(tmp_path, images, mode):
    settings = seed_pack()
    for s in settings:
        solo(tmp_path / "solo" / s.run_name, s, images)
    folders = [tmp_path / mode / s.run_name for s in settings]
    summaries = pack(folders, settings, images, mode)
    for s, folder, summary in zip(settings, folders, summaries, strict=True):
        assert_same_run(tmp_path / "solo" / s.run_name, folder, exact=mode == "loop")
        # the job's log, as log_to_file set it for this process (an earlier test may have), and
        # no GPU peak on the CPU (the benchmark record measures the job's memory there)
        expected = {"runs": [x.run_name for x in settings], "mode": mode, "log": job_log()}
        assert summary["pack"] == expected | {"peak_gpu_mb": None}
        assert json.loads((folder / "run.json").read_text()) == summary
        assert not (folder / "progress").exists()


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_lambda_finetunes_of_one_model_packed(tmp_path, images, mode):
    stable = tmp_path / "stable"
    solo(stable, tiny(), images)
    init = stable / "model.pt"
    settings = [
        tiny(phase="finetune", lam=lam, steps=6, run_name=f"tiny/beta4/seed0/lambda{lam}")
        for lam in (0.0, 4.0, 32.0)
    ]
    for s in settings:
        solo(tmp_path / "solo" / s.run_name, s, images, init_model=init)
    folders = [tmp_path / mode / s.run_name for s in settings]
    pack(folders, settings, images, mode, init_model=init)
    for s, folder in zip(settings, folders, strict=True):
        assert_same_run(tmp_path / "solo" / s.run_name, folder, exact=mode == "loop")


def test_members_must_share_all_but_their_identity(tmp_path, images):
    a, b = tiny(), tiny(seed=1, run_name="tiny/beta4/seed1", lr=2e-3, log_every=5)
    with pytest.raises(ValueError, match=r"differs from tiny/beta4/seed0 in \['log_every', 'lr'\]"):
        pack([tmp_path / "a", tmp_path / "b"], [a, b], images, "loop")
    with pytest.raises(ValueError, match="distinct run_names"):
        pack([tmp_path / "a", tmp_path / "b"], [a, a], images, "loop")
    with pytest.raises(ValueError, match="pack mode"):
        train_pack([member(tmp_path / "a", a)], images, mode="grouped")


def memory_order(tensor: torch.Tensor) -> list[tuple[int, int]]:
    """(dimension, stride) of the dimensions longer than 1: what fixes the memory layout."""
    return [(d, tensor.stride(d)) for d in range(tensor.ndim) if tensor.shape[d] > 1]


def test_both_layouts_keep_each_members_weights_and_layout():
    models = [initial_model(1, 3, seed).to(memory_format=torch.channels_last) for seed in (0, 1)]
    solo_weights = [dict(model.named_parameters()) for model in models]
    stacked = pack_weights(solo_weights, "vmap")
    assert isinstance(stacked, StackedWeights) and len(stacked) == 2
    conv = stacked.stacked["encoder.2.weight"]
    assert conv.is_leaf and conv.requires_grad and conv.shape[0] == 2
    assert conv[1].stride() == models[1].encoder[2].weight.stride()  # a channels_last slice
    looped = pack_weights(solo_weights, "loop")
    assert isinstance(looped, MemberWeights) and len(looped.parameters()) == 2 * 24
    assert isinstance(pack_weights(solo_weights[:1], "vmap"), MemberWeights)  # a pack of one
    for layout in (stacked, looped):
        for k, model in enumerate(models):
            for name, value in layout.member_weights(k).items():
                assert torch.equal(value, model.state_dict()[name])
                assert memory_order(value) == memory_order(model.state_dict()[name]), name
        assert layout.finite_members() == [True, True]
    with torch.no_grad():
        stacked.stacked["decoder.0.bias"][1, 0] = float("inf")
    assert stacked.finite_members() == [True, False]
    plain = stack_like([torch.ones(2, 3), torch.zeros(2, 3)])
    assert plain.is_contiguous() and plain.sum() == 6


# ---- a NaN member stops alone -----------------------------------------------------------------


def poison_member(monkeypatch, target: int, members: int, step: int, batch: int) -> None:
    """Put a NaN in member ``target``'s batch of ``step``, whichever way the pack draws."""
    original = DeviceImages.batch
    calls = {"n": 0}

    def batch_with_nan(self, indices, dtype=torch.float32):
        calls["n"] += 1
        x = original(self, indices, dtype)
        if len(indices) == batch:  # loop mode: one call per member and step
            this_step, this_member = divmod(calls["n"] - 1, members)
            this_step, row = this_step + 1, 0
        else:  # vmap mode: one call per step for all members
            this_step, this_member, row = calls["n"], target, target * batch
        if this_step == step and this_member == target:
            x = x.clone()
            x[row, 0, 0, 0] = float("nan")
        return x

    monkeypatch.setattr(DeviceImages, "batch", batch_with_nan)


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_a_nan_member_stops_alone_and_the_others_finish(tmp_path, images, monkeypatch, mode):
    settings = seed_pack()
    for s in settings:
        solo(tmp_path / "solo" / s.run_name, s, images)
    folders = [tmp_path / mode / s.run_name for s in settings]
    with monkeypatch.context() as patch:
        poison_member(patch, target=1, members=3, step=6, batch=4)
        with pytest.raises(NonFiniteLossError) as error:
            pack(folders, settings, images, mode)
    message = str(error.value)
    assert "tiny/beta4/seed1: non-finite loss at step 6" in message
    assert "seed0:" not in message and "seed2:" not in message
    assert "the 2 other run(s) of the pack finished" in message
    # the failed run keeps its last good checkpoint (step 4) and writes nothing
    bad = torch.load(folders[1] / "progress" / CHECKPOINT_FILE, weights_only=True)
    assert bad["step"] == 4 and not (folders[1] / "model.pt").exists()
    # the others are their solo runs (the NaN never reached them) and keep a final checkpoint
    for k in (0, 2):
        assert_same_run(tmp_path / "solo" / settings[k].run_name, folders[k], mode == "loop")
        done = torch.load(folders[k] / "progress" / CHECKPOINT_FILE, weights_only=True)
        assert done["step"] == 12

    # the job again, once the cause is gone (and its outputs deleted, as Snakemake does): the
    # finished runs are rewritten without training, the failed one resumes from step 4
    for folder in folders:
        for name in ("model.pt", "curve.csv", "run.json"):
            (folder / name).unlink(missing_ok=True)
    summaries = pack(folders, settings, images, mode)
    assert [s["resumed_from_step"] for s in summaries] == [12, 4, 12]
    assert summaries[0]["steps_per_second"] is None
    for s, folder in zip(settings, folders, strict=True):
        assert_same_run(tmp_path / "solo" / s.run_name, folder, exact=mode == "loop")
        assert not (folder / "progress").exists()


# ---- kill and resume ------------------------------------------------------------------------


def test_killed_pack_resumes_to_the_uninterrupted_result(tmp_path, images):
    settings = [tiny(**{**s.to_dict(), "steps": 30, "checkpoint_every": 2}) for s in seed_pack()]
    np.save(tmp_path / "images.npy", images)
    killed = [tmp_path / "killed" / s.run_name for s in settings]
    runs = json.dumps([[s.to_dict(), str(f)] for s, f in zip(settings, killed, strict=True)])
    child = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        import numpy as np
        sys.path.insert(0, {str(SCRIPTS)!r})
        from lambdabeta.settings import TrainSettings
        from lambdabeta.training import PackMember, train_pack
        members = []
        for values, folder in json.loads({runs!r}):
            folder = Path(folder)
            members.append(PackMember(TrainSettings.from_dict(values), folder / "model.pt",
                folder / "curve.csv", folder / "run.json", folder / "progress"))
        train_pack(members, np.load({str(tmp_path / "images.npy")!r}), progress_interval=1e9)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stderr=subprocess.DEVNULL)
    checkpoint = killed[-1] / "progress" / CHECKPOINT_FILE
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the training process ended before it was killed"
    assert not any((folder / "model.pt").exists() for folder in killed)

    summaries = pack(killed, settings, images, "loop")
    assert all(0 < s["resumed_from_step"] < 30 for s in summaries)
    reference = [tmp_path / "reference" / s.run_name for s in settings]
    pack(reference, settings, images, "loop")
    for a, b in zip(reference, killed, strict=True):
        assert_same_run(a, b, exact=True)


def test_interrupted_vmap_pack_resumes_bitwise(tmp_path, images, monkeypatch):
    settings = seed_pack()

    class Interrupted(Exception):
        pass

    original = DeviceImages.batch
    calls = {"n": 0}

    def interrupted_batch(self, indices, dtype=torch.float32):
        calls["n"] += 1
        if calls["n"] == 10:  # step 10, after the step-8 checkpoints
            raise Interrupted
        return original(self, indices, dtype)

    folders = [tmp_path / "resumed" / s.run_name for s in settings]
    with monkeypatch.context() as patch:
        patch.setattr(DeviceImages, "batch", interrupted_batch)
        with pytest.raises(Interrupted):
            pack(folders, settings, images, "vmap")
    summaries = pack(folders, settings, images, "vmap")
    assert [s["resumed_from_step"] for s in summaries] == [8, 8, 8]
    reference = [tmp_path / "reference" / s.run_name for s in settings]
    pack(reference, settings, images, "vmap")
    for a, b in zip(reference, folders, strict=True):
        assert_same_run(a, b, exact=True)


def test_members_at_different_steps_join_when_the_pack_reaches_them(tmp_path, images, monkeypatch):
    """A run interrupted alone at step 8 joins a pack whose other member starts from 0; both
    end as their solo runs."""
    first, second = seed_pack()[:2]
    folders = [tmp_path / "pack" / s.run_name for s in (first, second)]

    class Interrupted(Exception):
        pass

    original = DeviceImages.batch
    calls = {"n": 0}

    def interrupted_batch(self, indices, dtype=torch.float32):
        calls["n"] += 1
        if calls["n"] == 10:
            raise Interrupted
        return original(self, indices, dtype)

    with monkeypatch.context() as patch:
        patch.setattr(DeviceImages, "batch", interrupted_batch)
        with pytest.raises(Interrupted):
            solo(folders[1], second, images)
    summaries = pack(folders, [first, second], images, "loop")
    assert [s["resumed_from_step"] for s in summaries] == [0, 8]
    for s, folder in zip((first, second), folders, strict=True):
        solo(tmp_path / "solo" / s.run_name, s, images)
        assert_same_run(tmp_path / "solo" / s.run_name, folder, exact=True)


# ---- pack formation --------------------------------------------------------------------------


def test_packs_are_fixed_blocks_of_the_runs_left_to_train():
    deep = {"datasets": ["toy"], "betas": [1, 0.5], "lambdas": [0, 4, 8], "seeds": [0, 1, 2, 3, 4]}
    stabilize = packs(deep, "stabilize", 2, finished=lambda run: False)
    assert [p.name for p in stabilize] == [
        "stabilize_pack_toy_beta1_seed0",
        "stabilize_pack_toy_beta1_seed2",
        "stabilize_pack_toy_beta0p5_seed0",
        "stabilize_pack_toy_beta0p5_seed2",
    ]  # fmt: skip  (seed 4 of each β is a block of one: it trains alone)
    assert stabilize[0].runs == (Run("toy", 1, 0), Run("toy", 1, 1))
    done = {Run("toy", 1, 0), Run("toy", 1, 3)}
    left = packs(deep, "stabilize", 2, finished=lambda run: run in done)
    assert [p.name for p in left] == [
        "stabilize_pack_toy_beta0p5_seed0", "stabilize_pack_toy_beta0p5_seed2"
    ]  # fmt: skip
    finetune = packs(deep, "finetune", 5, finished=lambda run: run.lam == 4)
    assert len(finetune) == 10 and finetune[0].name == "finetune_pack_toy_beta1_seed0_lambda0"
    assert finetune[0].runs == (Run("toy", 1, 0, 0), Run("toy", 1, 0, 8))
    assert packs(deep, "finetune", 1, finished=lambda run: False) == []


# ---- the workflow: pack_size is logistics ------------------------------------------------


def workflow_config(seeds: list[int], pack_size: int) -> dict:
    return {
        "datasets": {"toy": {"format": "procedural", "subgrid": {"pos_x": 4, "pos_y": 4}}},
        "deep": {
            "datasets": ["toy"],
            "betas": [1],
            "lambdas": [0, 4],
            "seeds": seeds,
            "latent_dim": 2,
            "train": {
                "batch_size": 4,
                "stabilize_steps": 4,
                "finetune_steps": 3,
                "checkpoint_every": 2,
                "log_every": 2,
                "device": "cpu",
                "pack_size": pack_size,
            },
            # the toy grid holds 11,520 images; the BCE window fits the 3 finetune steps
            "evaluate": {
                "num_train": 40,
                "num_test": 10,
                "batch_size": 10,
                "bce_window": 2,
                "reconstruction_images": 2,
            },
        },
        "resources": {
            stage: {"threads": 1, "gpu": 0, "mem_mb": 500, "runtime": 5}
            for stage in ("prepare", "stabilize", "finetune", "evaluate")
        },
    }


def finetuned(seeds: list[int]) -> list[str]:
    return [f"results/runs/toy/beta1/seed{s}/lambda{lam}/run.json" for s in seeds for lam in (0, 4)]


def planned(workdir: Path, seeds: list[int], pack_size: int) -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans to finetune every seed."""
    config = write_config(workdir, workflow_config(seeds, pack_size), name="planned.yaml")
    result = snakemake(workdir, *finetuned(seeds), "-n", "--quiet", "rules", config=config)
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.slow
def test_pack_size_replans_nothing_and_a_new_seed_trains_alone(tmp_path):
    config = write_config(tmp_path, workflow_config([0, 1], 2))
    snakemake(tmp_path, *finetuned([0, 1]), "--cores", "1", config=config)
    record = json.loads((tmp_path / "results/runs/toy/beta1/seed1/lambda4/run.json").read_text())
    assert record["pack"]["runs"] == ["toy/beta1/seed1/lambda0", "toy/beta1/seed1/lambda4"]
    assert (tmp_path / "logs/train/packs/stabilize_pack_toy_beta1_seed0.log").stat().st_size > 0

    for pack_size in (2, 1, 3):
        assert planned(tmp_path, [0, 1], pack_size) == {}, pack_size
    # seeds 2 and 3 form the next block: only their runs train, packed
    assert planned(tmp_path, [0, 1, 2, 3], 2) == {
        "stabilize_pack_toy_beta1_seed2": 1,
        "finetune_pack_toy_beta1_seed2_lambda0": 1,
        "finetune_pack_toy_beta1_seed3_lambda0": 1,
    }
    # seed 2 alone is a block of one run to stabilize: it trains on its own
    assert planned(tmp_path, [0, 1, 2], 2) == {
        "stabilize": 1, "finetune_pack_toy_beta1_seed2_lambda0": 1
    }  # fmt: skip
    # a science change retrains every run, in packs
    changed = workflow_config([0, 1], 2)
    changed["deep"]["train"]["batch_size"] = 5
    path = write_config(tmp_path, changed, name="science.yaml")
    result = snakemake(tmp_path, *finetuned([0, 1]), "-n", "--quiet", "rules", config=path)
    assert "stabilize_pack_toy_beta1_seed0" in result.stdout
    assert yaml.safe_load(config.read_text()) == workflow_config([0, 1], 2)
