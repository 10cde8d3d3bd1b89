"""The phase trainer: curves, seeding, resume after a kill, finetune start, failures, GPU slots."""

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
from training_helpers import random_binary_images, tiny_settings

from lambdabeta import devices
from lambdabeta.loader import DeviceImages
from lambdabeta.loss import lambda_beta_loss
from lambdabeta.model import load_model
from lambdabeta.settings import TrainSettings
from lambdabeta.training import CheckpointMismatchError, NonFiniteLossError, train
from lambdabeta.training.checkpoint import CHECKPOINT_FILE
from lambdabeta.training.curve import curve_columns
from lambdabeta.training.streams import initial_model, make_generators, stream_seeds

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


@pytest.fixture(scope="module")
def images():
    return random_binary_images()


def tiny(**overrides) -> TrainSettings:
    return tiny_settings(**overrides)


def run(tmp_path, settings, images, name="run", **kwargs):
    out = tmp_path / name
    summary = train(
        settings,
        images,
        model_path=out / "model.pt",
        log_path=out / "curve.csv",
        summary_path=out / "summary.json",
        progress_dir=out / "progress",
        **kwargs,
    )
    return out, summary


def weights(path):
    return load_model(path)[0].state_dict()


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def fail_on_batch(monkeypatch, call, make_error=None):
    """Make the ``call``-th DeviceImages.batch either raise ``make_error()`` or return NaNs."""
    original = DeviceImages.batch
    calls = {"n": 0}

    def batch(self, indices, dtype=torch.float32):
        calls["n"] += 1
        x = original(self, indices, dtype)
        if calls["n"] == call:
            if make_error is not None:
                raise make_error()
            x = x.clone()
            x[0, 0, 0, 0] = float("nan")
        return x

    monkeypatch.setattr(DeviceImages, "batch", batch)


# ---- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("steps", 0),
        ("steps", 2.5),
        ("batch_size", -1),
        ("lr", -1e-4),
        ("beta", float("nan")),
        ("adam_betas", [0.9]),
        ("adam_eps", 0.0),
        ("precision", "fp16"),
        ("device", "gpu"),
        ("phase", "pretrain"),
        ("compile", "false"),
        ("seed", -1),
    ],
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        tiny(**{key: value})


def test_settings_from_dict():
    values = {**tiny().to_dict(), "adam_betas": [0.5, 0.6]}
    assert TrainSettings.from_dict(values).adam_betas == (0.5, 0.6)
    with pytest.raises(ValueError, match="stabilize_steps"):
        TrainSettings.from_dict({**values, "stabilize_steps": 3})
    with pytest.raises(ValueError, match=r"lack \['beta'\]"):
        TrainSettings.from_dict({k: v for k, v in values.items() if k != "beta"})
    with pytest.raises(ValueError, match="compile and cuda_graphs"):
        tiny(compile=True, cuda_graphs=True)


# ---- curve and outputs ---------------------------------------------------------------------


@pytest.mark.trains
def test_curve_rows_are_exact_means_of_the_steps(tmp_path, images):
    # lr = 0 keeps the initial weights, so every step's loss can be recomputed here
    settings = tiny(lr=0.0, lam=2.0, steps=10, log_every=4)
    out, summary = run(tmp_path, settings, images)
    curve = pd.read_csv(out / "curve.csv")
    assert list(curve.columns) == curve_columns(3)
    assert curve["step"].tolist() == [4, 8, 10]
    assert curve["steps_in_row"].tolist() == [4, 4, 2]
    assert curve["seconds"].is_monotonic_increasing

    model = initial_model(1, 3, seed=0)
    index_gen, noise_gen = make_generators(settings, torch.device("cpu"))
    data = DeviceImages(images)
    per_step = []
    with torch.no_grad():
        for _ in range(10):
            indices = torch.randint(len(images), (4,), generator=index_gen)
            noise = torch.randn(4, 3, generator=noise_gen)
            x = data.batch(indices)
            logits, mu, logvar = model(x, noise)
            t = lambda_beta_loss(logits, x, mu, logvar, beta=4.0, lam=2.0)
            per_step.append([t.loss, t.bce, t.kl, t.l2, *t.kl_per_latent])
    per_step = np.array(per_step, dtype=np.float64)
    expected = np.stack([per_step[0:4].mean(0), per_step[4:8].mean(0), per_step[8:10].mean(0)])
    np.testing.assert_allclose(curve.iloc[:, 1:-2].to_numpy(), expected, rtol=1e-5)

    written = json.loads((out / "summary.json").read_text())
    assert written["device"] == "cpu" and written["steps"] == 10
    assert written["final"]["loss"] == pytest.approx(curve["loss"].iloc[-1])
    assert written["settings"]["lam"] == 2.0 and written["torch_version"] == torch.__version__
    assert summary == written
    assert not (out / "progress").exists()
    assert load_model(out / "model.pt")[1]["run_name"] == settings.run_name


# ---- seeding -------------------------------------------------------------------------------


@pytest.mark.trains
def test_same_seed_same_weights_other_seed_other_weights(tmp_path, images):
    a, _ = run(tmp_path, tiny(steps=4), images, "a")
    b, _ = run(tmp_path, tiny(steps=4), images, "b")
    c, _ = run(tmp_path, tiny(steps=4, seed=1), images, "c")
    assert_same_weights(weights(a / "model.pt"), weights(b / "model.pt"))
    pd.testing.assert_frame_equal(
        pd.read_csv(a / "curve.csv").drop(columns="seconds"),
        pd.read_csv(b / "curve.csv").drop(columns="seconds"),
    )
    differ = (
        weights(a / "model.pt")["encoder.0.weight"] != weights(c / "model.pt")["encoder.0.weight"]
    )
    assert differ.any()


def test_streams_depend_on_seed_and_phase_initial_weights_on_seed_only():
    seeds = {stream_seeds(s, phase) for s in (0, 1) for phase in ("stabilize", "finetune")}
    assert len(seeds) == 4 and all(len(set(pair)) == 2 for pair in seeds)
    a, b = initial_model(1, 15, seed=3), initial_model(1, 15, seed=3)
    assert_same_weights(a.state_dict(), b.state_dict())
    assert not torch.equal(a.encoder[0].weight, initial_model(1, 15, seed=4).encoder[0].weight)


def test_lambda_finetunes_of_one_model_see_the_same_batches_and_noise():
    """Paired finetunes: the λ runs of one stabilized model draw identical streams, so their
    difference is the effect of λ alone."""
    draws = []
    for lam in (0.0, 4.0, 32.0):
        index_gen, noise_gen = make_generators(tiny(phase="finetune", lam=lam), torch.device("cpu"))
        draws.append(
            (torch.randint(100, (8,), generator=index_gen), torch.randn(8, 3, generator=noise_gen))
        )
    for indices, noise in draws[1:]:
        assert torch.equal(indices, draws[0][0]) and torch.equal(noise, draws[0][1])
    index_gen, _ = make_generators(tiny(phase="stabilize"), torch.device("cpu"))
    assert not torch.equal(torch.randint(100, (8,), generator=index_gen), draws[0][0])


# ---- resume --------------------------------------------------------------------------------


@pytest.mark.trains
def test_interrupted_run_resumes_to_identical_result(tmp_path, images, monkeypatch):
    settings = tiny(steps=11, checkpoint_every=3, log_every=4)
    reference, _ = run(tmp_path, settings, images, "reference")

    class Interrupted(Exception):
        pass

    with monkeypatch.context() as patch:
        fail_on_batch(patch, call=8, make_error=Interrupted)  # after the step-6 checkpoint
        with pytest.raises(Interrupted):
            run(tmp_path, settings, images, "resumed")
    assert (tmp_path / "resumed" / "progress" / CHECKPOINT_FILE).is_file()
    resumed, summary = run(tmp_path, settings, images, "resumed")
    assert summary["resumed_from_step"] == 6
    assert_same_weights(weights(reference / "model.pt"), weights(resumed / "model.pt"))
    pd.testing.assert_frame_equal(
        pd.read_csv(reference / "curve.csv").drop(columns="seconds"),
        pd.read_csv(resumed / "curve.csv").drop(columns="seconds"),
    )


@pytest.mark.trains
def test_sigkilled_run_resumes_to_identical_result(tmp_path, images):
    settings = tiny(steps=24, checkpoint_every=2, log_every=5)
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "killed"
    child = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        sys.path.insert(0, {str(SCRIPTS)!r})
        from lambdabeta.settings import TrainSettings
        from lambdabeta.training import train
        settings = TrainSettings.from_dict(json.loads({json.dumps(settings.to_dict())!r}))
        train(settings, np.load({str(tmp_path / "images.npy")!r}),
              model_path={str(out / "model.pt")!r}, log_path={str(out / "curve.csv")!r},
              summary_path={str(out / "summary.json")!r},
              progress_dir={str(out / "progress")!r})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stderr=subprocess.DEVNULL)
    checkpoint = out / "progress" / CHECKPOINT_FILE
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the training process ended before it was killed"
    assert not (out / "model.pt").exists()

    _, summary = run(tmp_path, settings, images, "killed")
    assert 0 < summary["resumed_from_step"] < settings.steps
    reference, _ = run(tmp_path, settings, images, "reference")
    assert_same_weights(weights(reference / "model.pt"), weights(out / "model.pt"))
    pd.testing.assert_frame_equal(
        pd.read_csv(reference / "curve.csv").drop(columns="seconds"),
        pd.read_csv(out / "curve.csv").drop(columns="seconds"),
    )


def test_checkpoint_of_other_settings_is_refused(tmp_path, images, monkeypatch):
    class Interrupted(Exception):
        pass

    with monkeypatch.context() as patch:
        fail_on_batch(patch, call=5, make_error=Interrupted)
        with pytest.raises(Interrupted):
            run(tmp_path, tiny(), images)
    with pytest.raises(CheckpointMismatchError, match=r"beta: checkpoint 4\.0, now 8\.0") as error:
        run(tmp_path, tiny(beta=8.0, lr=1e-3), images)
    assert "lr: checkpoint" in str(error.value) and "seed:" not in str(error.value)
    assert (tmp_path / "run" / "progress" / CHECKPOINT_FILE).is_file()
    # logistics (run name, checkpoint interval, threads, layout) do not make a different run
    run(tmp_path, tiny(run_name="renamed", checkpoint_every=4, channels_last=False), images)
    assert (tmp_path / "run" / "model.pt").is_file()


# ---- finetune ------------------------------------------------------------------------------


@pytest.mark.trains
def test_finetune_starts_from_the_stabilized_weights(tmp_path, images):
    stable, _ = run(tmp_path, tiny(steps=5), images, "stable")
    init = stable / "model.pt"
    finetune = tiny(phase="finetune", lam=8.0, lr=0.0, steps=2, log_every=1)
    tuned, summary = run(tmp_path, finetune, images, "tuned", init_model=init)
    assert summary["init_model"] == str(init)
    assert_same_weights(weights(init), weights(tuned / "model.pt"))

    # the first finetune loss is the stabilized model's loss on the first finetune batch
    model, _ = load_model(init)
    index_gen, noise_gen = make_generators(finetune, torch.device("cpu"))
    x = DeviceImages(images).batch(torch.randint(len(images), (4,), generator=index_gen))
    noise = torch.randn(4, 3, generator=noise_gen)
    with torch.no_grad():
        logits, mu, logvar = model(x, noise)
        expected = lambda_beta_loss(logits, x, mu, logvar, beta=4.0, lam=8.0)
    first = pd.read_csv(tuned / "curve.csv").iloc[0]
    assert first["loss"] == pytest.approx(expected.loss.item(), rel=1e-6)
    assert first["l2"] == pytest.approx(expected.l2.item(), rel=1e-6)


def test_phase_and_init_must_agree(tmp_path, images):
    with pytest.raises(ValueError, match="needs an init_model"):
        run(tmp_path, tiny(phase="finetune"), images)
    stable, _ = run(tmp_path, tiny(steps=1), images, "stable")
    with pytest.raises(ValueError, match="takes no init_model"):
        run(tmp_path, tiny(), images, init_model=stable / "model.pt")
    with pytest.raises(ValueError, match="3 latents"):
        run(tmp_path, tiny(phase="finetune", latent_dim=4), images, init_model=stable / "model.pt")


# ---- failures ------------------------------------------------------------------------------


def test_nan_in_the_batch_fails_naming_run_and_step(tmp_path, images, monkeypatch):
    fail_on_batch(monkeypatch, call=8)
    with pytest.raises(NonFiniteLossError, match=r"tiny/beta4/seed0: non-finite loss at step 8"):
        run(tmp_path, tiny(steps=12, checkpoint_every=3, log_every=5), images)
    checkpoint = torch.load(tmp_path / "run" / "progress" / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["step"] == 6
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())
    assert not (tmp_path / "run" / "model.pt").exists()


def test_bf16_on_cpu_is_refused_and_cuda_graphs_ignored(tmp_path, images):
    with pytest.raises(ValueError, match=r"bf16.*CPU"):
        run(tmp_path, tiny(precision="bf16", device="cpu"), images)
    _, summary = run(tmp_path, tiny(steps=2, cuda_graphs=True), images, "graphs")
    assert summary["device"] == "cpu"


@pytest.mark.trains
def test_contiguous_layout_trains_the_same_model(tmp_path, images):
    a, _ = run(tmp_path, tiny(steps=2, channels_last=False), images, "a")
    b, _ = run(tmp_path, tiny(steps=2, channels_last=True), images, "b")
    initial = initial_model(1, 3, seed=0).state_dict()
    # Adam moves a weight by at most ~lr per step, however its gradient rounds: a gradient near
    # zero may round to another sign in the other layout (seen with AVX2 kernels), so weights
    # agree to steps × lr; the layouts must agree far better on almost every weight
    bound = 2 * tiny().lr
    for name, value in weights(a / "model.pt").items():
        other = weights(b / "model.pt")[name]
        torch.testing.assert_close(value, other, rtol=0, atol=bound)
        close = torch.isclose(value, other, rtol=1e-4, atol=1e-6)
        assert close.float().mean() > 0.999, name
        assert not torch.equal(value, initial[name]), name  # trained, so the check means something


# ---- GPU slots -----------------------------------------------------------------------------


def test_gpu_slots_are_exclusive_spread_and_reused(tmp_path):
    first = devices.try_claim_gpu_slot(2, 2, tmp_path)
    second = devices.try_claim_gpu_slot(2, 2, tmp_path)
    assert (first.gpu, first.slot) == (0, 0)
    assert (second.gpu, second.slot) == (1, 0)  # a second GPU before a second job on GPU 0
    third = devices.try_claim_gpu_slot(2, 2, tmp_path)
    fourth = devices.try_claim_gpu_slot(2, 2, tmp_path)
    assert {(third.gpu, third.slot), (fourth.gpu, fourth.slot)} == {(0, 1), (1, 1)}
    assert devices.try_claim_gpu_slot(2, 2, tmp_path) is None
    with pytest.raises(TimeoutError, match="2 GPU"):
        devices.claim_gpu_slot(2, 2, tmp_path, poll_seconds=0.01, timeout=0.05)
    second.release()
    again = devices.claim_gpu_slot(2, 2, tmp_path, poll_seconds=0.01, timeout=1.0)
    assert (again.gpu, again.slot) == (1, 0)
    for slot in (first, third, fourth, again):
        slot.release()


def test_gpu_slot_held_by_another_process(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, time; sys.path.insert(0, {str(SCRIPTS)!r})\n"
            "from lambdabeta.devices import try_claim_gpu_slot\n"
            f"slot = try_claim_gpu_slot(2, 1, {str(tmp_path)!r})\n"
            "print(slot.gpu, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        mine = devices.try_claim_gpu_slot(2, 1, tmp_path)
        assert mine.gpu == 1
        mine.release()
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead process's lock
    reclaimed = devices.try_claim_gpu_slot(2, 1, tmp_path)
    assert reclaimed.gpu == 0
    reclaimed.release()


def test_select_device_on_cpu_machines(tmp_path, monkeypatch):
    monkeypatch.setenv(devices.LOCK_DIR_ENV, str(tmp_path / "locks"))
    assert devices.default_lock_dir() == tmp_path / "locks"
    assert devices.select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'gpu0'"):
        devices.select_device("gpu0")
    if not torch.cuda.is_available():
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU to see, whatever nvidia-smi says
        assert devices.select_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            devices.select_device("cuda:1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use CUDA")
def test_a_gpu_torch_cannot_use_is_an_error_not_a_cpu_run(monkeypatch):
    """A job that sees a GPU (the scheduler set CUDA_VISIBLE_DEVICES) with a torch that cannot
    use it, a CPU build or a CUDA build newer than the driver, stops instead of training on the
    CPU; the message names the build and both ways out."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(RuntimeError) as error:
        devices.select_device("auto", setting="deep.train.device")
    message = str(error.value)
    assert "sees 2 GPU(s)" in message and torch.__version__ in message
    assert ("CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}") in message
    assert "deep.train.device" in message and "resources.<job>.gpu" in message
    # asked for on purpose, the CPU is fine
    assert devices.select_device("cpu") == torch.device("cpu")
