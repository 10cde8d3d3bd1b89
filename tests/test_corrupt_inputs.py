"""Corrupt intermediates (prepared datasets, model files, checkpoints, training curves) are caught
with a message that names the file, and moved aside so that the next run recomputes them."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from lambdabeta import loader
from lambdabeta.io import CorruptFileError, move_aside, read_json, write_json
from lambdabeta.loader import DIGEST_KEY, load_prepared
from lambdabeta.model import VAE, load_model, save_model
from lambdabeta.prepare import prepare_source
from lambdabeta.training.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINT_FORMAT,
    read_checkpoint,
)
from lambdabeta.training.curve import control_summary, curve_columns, tail_mean, write_curve

SUBGRID = {"scale": 2, "orientation": 3, "pos_x": 4, "pos_y": 3}  # 216 images, 0.9 MB


def prepare_demo(directory):
    """The procedural dSprites on a small sub-grid, prepared as the pipeline does."""
    source = {"format": "procedural", "subgrid": SUBGRID}
    return prepare_source(source, None, directory, name="demo", threads=1)


@pytest.fixture
def prepared(tmp_path):
    return prepare_demo(tmp_path / "demo")


def overwrite(path, offset, data):
    """Write ``data`` into ``path`` at ``offset``, keeping its size."""
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(data)


def assert_moved_aside(error, path, original: bytes):
    """The error names ``path`` and the next run; the file went to ``<name>.corrupt`` intact."""
    message = str(error.value)
    assert str(path) in message
    assert "the next `snakemake` run" in message
    assert "weights_only" not in message
    assert not path.exists()
    aside = path.with_name(path.name + ".corrupt")
    assert error.value.moved_to == aside
    assert f"Moved it to {aside}" in message
    assert aside.read_bytes() == original


# ---- prepared datasets -------------------------------------------------------------------------


def test_prepare_records_a_digest_that_load_checks(prepared, caplog):
    digest = read_json(prepared / "meta.json")[DIGEST_KEY]
    assert digest["algorithm"] == "sha256"
    assert digest["images_bytes"] == (prepared / "images.npy").stat().st_size
    assert (digest["images_blocks"], digest["images_block_bytes"]) == (4096, 4096)
    with caplog.at_level(logging.WARNING, logger="lambdabeta"):
        assert len(load_prepared(prepared)) == 216
    assert not caplog.records


def test_dataset_altered_in_place_is_caught_and_moved_aside(prepared):
    images = prepared / "images.npy"
    size = images.stat().st_size
    overwrite(images, size // 3, b"\x80" * (size // 3))  # a third of the images, same size
    altered = images.read_bytes()
    assert len(altered) == size
    with pytest.raises(CorruptFileError, match=r"content differs from the digest") as error:
        load_prepared(prepared)
    assert_moved_aside(error, images, altered)
    # a reader after that is told where the file went and what prepares it again
    with pytest.raises(FileNotFoundError, match=r"images\.npy is missing .*moved aside"):
        load_prepared(prepared)


def test_the_next_run_prepares_the_dataset_again(prepared):
    overwrite(prepared / "images.npy", 200_000, b"\x00" * 50_000)
    with pytest.raises(CorruptFileError):
        load_prepared(prepared)
    # what Snakemake does for the missing output images.npy: remove the job's other outputs, and
    # run prepare_dataset again, beside the file moved aside
    for name in ("factors.npy", "meta.json"):
        (prepared / name).unlink()
    prepare_demo(prepared)
    assert len(load_prepared(prepared)) == 216
    assert (prepared / "images.npy.corrupt").exists()


def test_sampled_digest_catches_a_region_longer_than_its_spacing(tmp_path, monkeypatch):
    # 8 blocks of 512 bytes: the 0.9 MB images are sampled, not hashed whole
    monkeypatch.setattr(loader, "DIGEST_BLOCKS", 8)
    monkeypatch.setattr(loader, "DIGEST_BLOCK_BYTES", 512)
    out = prepare_demo(tmp_path / "demo")
    images = out / "images.npy"
    size = images.stat().st_size
    spacing = (size - 512) // 7
    # honest about the limit: one altered byte between two sampled blocks goes unnoticed
    original = images.read_bytes()[spacing // 2 : spacing // 2 + 1]
    overwrite(images, spacing // 2, bytes([original[0] ^ 1]))
    load_prepared(out)
    overwrite(images, spacing // 2, original)
    # a run of bytes as long as the spacing always covers a sampled block, wherever it starts
    overwrite(images, 12_345, b"\x7f" * spacing)
    with pytest.raises(CorruptFileError, match=r"8 evenly spaced blocks of 512 bytes"):
        load_prepared(out)


def test_truncated_dataset_is_caught_with_its_size(prepared):
    images = prepared / "images.npy"
    size = images.stat().st_size
    with open(images, "r+b") as stream:
        stream.truncate(size - 4096 * 10)
    truncated = images.read_bytes()
    expected = rf"images\.npy is {size - 40960:,} bytes, expected {size:,} .*: truncated"
    with pytest.raises(CorruptFileError, match=expected) as error:
        load_prepared(prepared)
    assert "mmap length" not in str(error.value)
    assert_moved_aside(error, images, truncated)


def test_dataset_truncated_within_its_header(prepared):
    images = prepared / "images.npy"
    with open(images, "r+b") as stream:
        stream.truncate(20)
    with pytest.raises(CorruptFileError, match=r"images\.npy: not a readable \.npy file"):
        load_prepared(prepared)


def test_altered_factors_are_caught(prepared):
    factors = prepared / "factors.npy"
    data = bytearray(factors.read_bytes())
    data[-1] ^= 1  # the last class of the last image
    factors.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"factors\.npy: its sha256") as error:
        load_prepared(prepared)
    assert_moved_aside(error, factors, bytes(data))


def test_garbled_meta_is_caught(prepared):
    meta = prepared / "meta.json"
    meta.write_bytes(b"\x00\xff garbled" + meta.read_bytes()[10:])
    with pytest.raises(CorruptFileError, match=r"meta\.json: not valid JSON"):
        load_prepared(prepared)
    assert (prepared / "meta.json.corrupt").exists()


def test_dataset_without_digest_is_accepted_with_a_warning(prepared, caplog):
    meta = read_json(prepared / "meta.json")
    del meta[DIGEST_KEY]
    write_json(prepared / "meta.json", meta)
    with caplog.at_level(logging.WARNING, logger="lambdabeta"):
        dataset = load_prepared(prepared)
    assert len(dataset) == 216
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "no digest" in warning.getMessage()
    assert str(prepared / "meta.json") in warning.getMessage()
    # the size check needs no digest: a truncated old dataset is still caught
    with open(prepared / "images.npy", "r+b") as stream:
        stream.truncate(100_000)
    with pytest.raises(CorruptFileError, match="truncated"):
        load_prepared(prepared)


def test_move_aside_never_overwrites(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"first")
    assert move_aside(path) == tmp_path / "model.pt.corrupt"
    path.write_bytes(b"second")
    assert move_aside(path) == tmp_path / "model.pt.corrupt2"
    assert (tmp_path / "model.pt.corrupt").read_bytes() == b"first"
    assert move_aside(path) is None  # already gone: another job moved it


# ---- model files and checkpoints ---------------------------------------------------------------


def garbage(kind: str, valid: bytes) -> bytes:
    """A corrupt version of the ``valid`` file's bytes."""
    return {
        "random": np.random.default_rng(0).bytes(5000),
        "empty": b"",
        "truncated": valid[: len(valid) // 2],
        "foreign pickle": pickle.dumps(object()),
    }[kind]


@pytest.mark.parametrize("kind", ["random", "empty", "truncated", "foreign pickle"])
def test_corrupt_model_is_caught_and_moved_aside(tmp_path, kind):
    path = tmp_path / "run" / "model.pt"
    save_model(path, VAE(1, latent_dim=3), {"run_name": "x"})
    data = garbage(kind, path.read_bytes())
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match=r"model\.pt: not a saved VAE of this pipeline"):
        load_model(path)
    with pytest.raises(CorruptFileError) as error:  # a copy: the first one was moved aside
        path.write_bytes(data)
        load_model(path)
    assert "unpickling failed" in str(error.value) or kind == "empty"
    assert error.value.moved_to == path.with_name("model.pt.corrupt2")
    assert "weights_only" not in str(error.value)


def test_model_missing_keys_or_wrong_weights(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "in_channels": 1}, path)
    with pytest.raises(CorruptFileError, match=r"missing \['latent_dim', 'metadata'\]") as error:
        load_model(path)
    assert_moved_aside(error, path, error.value.moved_to.read_bytes())
    state = VAE(1, latent_dim=3).state_dict()
    torch.save({"state_dict": state, "in_channels": 1, "latent_dim": 4, "metadata": {}}, path)
    with pytest.raises(CorruptFileError, match="its weights do not fit its shape"):
        load_model(path)


def test_corrupt_progress_checkpoint_starts_the_run_over(tmp_path):
    progress = tmp_path / "run" / "progress"
    progress.mkdir(parents=True)
    path = progress / CHECKPOINT_FILE
    data = np.random.default_rng(1).bytes(3000)
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match=r"not a training checkpoint") as error:
        read_checkpoint(progress, {}, [], "demo/beta4/seed0")
    assert "starts demo/beta4/seed0 over from step 0" in str(error.value)
    assert "weights_only" not in str(error.value)
    assert error.value.moved_to.read_bytes() == data
    assert read_checkpoint(progress, {}, [], "demo/beta4/seed0") is None  # a fresh start
    # the right format but not what a checkpoint holds
    torch.save({"format": CHECKPOINT_FORMAT, "identity": {}}, path)
    with pytest.raises(CorruptFileError, match=r"missing \['elapsed', 'index_rng'"):
        read_checkpoint(progress, {}, [], "demo/beta4/seed0")


# ---- training curves ---------------------------------------------------------------------------


@pytest.fixture
def curve(tmp_path):
    """A training curve of 4 rows of 10 steps, as training writes it."""
    path = tmp_path / "run" / "train_log.csv"
    rows = [[10 * (k + 1), 3.0, 2.0, 1.0, 0.5, 0.6, 0.4, 1.0 * k, 10] for k in range(4)]
    write_curve(path, rows, latent_dim=2)
    assert tail_mean(path, "bce", 20) == 2.0
    return path


def test_garbled_curve_header_names_the_columns(curve):
    text = curve.read_bytes()
    garbled = b"s\x13ep,l#ss" + text[len(b"step,loss") :]
    curve.write_bytes(garbled)
    with pytest.raises(CorruptFileError, match=r"lacks column\(s\) \['step'\]") as error:
        tail_mean(curve, "bce", 20)
    message = str(error.value)
    assert "needs ['step', 'bce', 'steps_in_row']" in message
    has = ["s\x13ep", "l#ss", *curve_columns(2)[2:]]
    assert f"it has {has}" in message
    assert_moved_aside(error, curve, garbled)


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda text: np.random.default_rng(2).bytes(len(text)), "cannot be parsed"),
        (lambda text: text[:-6], "steps_in_row = nan in row 3"),
        (lambda text: text.replace(b"2.0", b"2.x", 1), "non-number in column 'bce'"),
        (lambda text: text.replace(b"\n30,", b"\n35,"), "not contiguous at row 2"),
        (lambda text: b"", "cannot be parsed"),
    ],
)
def test_damaged_curve_is_caught_and_moved_aside(curve, damage, problem):
    damaged = damage(curve.read_bytes())
    curve.write_bytes(damaged)
    with pytest.raises(CorruptFileError, match=problem) as error:
        tail_mean(curve, "bce", 20)
    assert_moved_aside(error, curve, damaged)


def test_control_summary_checks_the_curve(curve):
    assert np.isnan(control_summary(curve)["final_lambda"])  # a static λ's curve
    frame = pd.read_csv(curve)
    frame["lam"] = 1.0  # one control column of three
    frame.to_csv(curve, index=False)
    with pytest.raises(CorruptFileError, match=r"lacks column\(s\) \['kl_average', 'set_point'\]"):
        control_summary(curve)


def test_a_callers_unknown_column_is_not_the_files_fault(curve):
    with pytest.raises(ValueError, match="'accuracy' is not a column of a training curve"):
        tail_mean(curve, "accuracy", 20)
    assert curve.exists()
