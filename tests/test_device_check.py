"""The device check runs on a CPU at reduced size, so its code cannot rot between the sessions
that have a GPU; every row it can measure here holds a finite, positive number."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import device_check

pytestmark = pytest.mark.slow


def test_device_check_measures_every_path_it_can_on_cpu(tmp_path, capsys):
    rows = device_check.main(["--small", "--device", "cpu", "--json", str(tmp_path / "t.json")])
    table = capsys.readouterr().out
    by_setting = {(row.check, row.setting): row for row in rows}
    training = {row.setting: row for row in rows if row.check == "train steps/s"}
    assert set(training) == {label for label, _, _ in device_check.TRAINING_OPTIONS} | {
        "DataLoader eager"
    }
    for label in ("eager", "channels_last", "DataLoader eager"):
        assert training[label].value > 0, training[label]
    for label in ("cuda_graphs", "bf16"):  # need CUDA
        assert training[label].value is None and "CUDA" in training[label].note
    agreement = next(row for row in rows if row.check.endswith("vs cpu"))
    assert agreement.value == 0.0  # the same device twice: bitwise the same curve
    for check in ("evaluation of one model", "linear AdamW step", "paper grid, one run at a time"):
        row = next(row for row in rows if row.check == check)
        assert math.isfinite(row.value) and row.value > 0, row
    packed = [row for row in rows if row.check == "packed model-steps/s"]
    assert len(packed) >= 2 and all(row.value > 0 for row in packed)
    assert len(by_setting) == len(rows)
    assert table.count("\n|") >= len(rows)  # one table line per row
    assert len(json.loads((tmp_path / "t.json").read_text())) == len(rows)
