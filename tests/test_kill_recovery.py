"""What a kill -9 leaves behind, and export edges (issue 13): each of these failed before its fix.

- a partial checkpoint write (``.NAME.XXXX.tmp``) is removed when the run starts again;
- ``--resume`` with only ``best.pt`` continues from it (it used to restart at step 0, silently);
- ``log.jsonl`` holds each step once after a resume (the steps logged past the checkpoint are dropped);
- ``ganvoice export`` leaves an existing ``-o`` file alone until the new graph passed its parity check;
- a checkpoint whose weights do not fit its variant, and ``--opset 5|99``, are one-line errors;
- a stop signal to the whole process group (``timeout``, Ctrl-C) saves and exits 0, workers and all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_train import RECIPES, tiny_recipe

from ganvoice.errors import GanvoiceError
from ganvoice.train import checkpoint as ckpt
from ganvoice.train.trainer import RunOptions, run_training


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from synthetic_corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _steps(out) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_a_killed_run_resumes_cleanly(manifest, tmp_path):
    """Kill after step 3 with the last checkpoint at step 2: partial file, extra log lines, resume."""
    out = tmp_path / "run"
    sections = {"train": {"max_steps": 3, "checkpoint_every": 2, "val_every": 1}}
    run_training(tiny_recipe("seed-mlp", **sections), RunOptions(data=manifest, out=out, progress=False))
    assert _steps(out).count(3) >= 1
    (out / "checkpoints" / ckpt.step_name(3)).unlink()  # the kill came before step 3's checkpoint
    partial = out / "checkpoints" / ".step_000000004.pt.abc123.tmp"
    partial.write_bytes(b"half a checkpoint")
    with (out / "log.jsonl").open("a") as log:
        log.write('{"step": 4, "train/g_loss": 1.0')  # a record cut short by the kill
    longer = tiny_recipe("seed-mlp", train={"max_steps": 4, "checkpoint_every": 2, "val_every": 1})
    result = run_training(longer, RunOptions(data=manifest, out=out, resume=True, progress=False))
    assert [h["step"] for h in result.history] == [3, 4]
    assert not partial.exists()
    steps = [s for s in _steps(out)]
    assert sorted(set(steps)) == [1, 2, 3, 4]
    train_steps = [
        json.loads(line)["step"]
        for line in (out / "log.jsonl").read_text().splitlines()
        if any(k.startswith("train/") for k in json.loads(line))
    ]
    assert train_steps == [1, 2, 3, 4]  # each step logged once


def test_resume_with_only_best_pt_continues_from_it(manifest, tmp_path):
    out = tmp_path / "run"
    sections = {"train": {"max_steps": 2, "checkpoint_every": 2, "val_every": 1}}
    run_training(tiny_recipe("seed-mlp", **sections), RunOptions(data=manifest, out=out, progress=False))
    best_step = ckpt.load_checkpoint(out / "checkpoints" / ckpt.BEST_NAME)["step"]
    for path in ckpt.step_checkpoints(out):
        path.unlink()
    with pytest.raises(GanvoiceError, match="pass --resume"):  # a fresh run would overwrite best.pt
        run_training(tiny_recipe("seed-mlp", **sections), RunOptions(data=manifest, out=out, progress=False))
    longer = tiny_recipe("seed-mlp", train={"max_steps": 3, "checkpoint_every": 2, "val_every": 1})
    result = run_training(longer, RunOptions(data=manifest, out=out, resume=True, progress=False))
    assert result.history[0]["step"] == best_step + 1 and result.step == 3


TINY_FAST = {"dim": 32, "intermediate_dim": 64, "num_blocks": 2}


def _export(args: list[str]) -> None:
    from ganvoice.export.cli import export

    export.main(args=args, standalone_mode=False)


@pytest.fixture
def tiny_random_export(monkeypatch):
    """``ganvoice export --variant fast --random`` builds the tiny fast model (seconds, not minutes)."""
    from ganvoice.export import cli
    from ganvoice.models.base import build_generator

    monkeypatch.setattr(
        cli,
        "build_generator",
        lambda variant, overrides=None: build_generator(variant, {**TINY_FAST, **(overrides or {})}),
    )
    return cli


def test_export_replaces_the_output_only_after_its_parity_check(tiny_random_export, monkeypatch, tmp_path):
    out = tmp_path / "g.onnx"
    out.write_bytes(b"the model that works")
    real_parity = tiny_random_export.torch_vs_ort
    monkeypatch.setattr(tiny_random_export, "torch_vs_ort", lambda generator, path: 0.5)
    with pytest.raises(GanvoiceError, match="parity check failed") as error:
        _export(["--variant", "fast", "--random", "-o", str(out)])
    assert "\n" not in str(error.value)
    assert out.read_bytes() == b"the model that works" and sorted(tmp_path.iterdir()) == [out]
    monkeypatch.setattr(tiny_random_export, "torch_vs_ort", real_parity)
    _export(["--variant", "fast", "--random", "-o", str(out)])
    assert out.read_bytes()[:4] != b"the " and sorted(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("opset", ["5", "99", "16"])
def test_unsupported_opsets_are_one_line_errors(tiny_random_export, tmp_path, opset):
    with pytest.raises(GanvoiceError, match=f"--opset {opset} is not supported") as error:
        _export(["--variant", "fast", "--random", "-o", str(tmp_path / "g.onnx"), "--opset", opset])
    assert "\n" not in str(error.value) and not list(tmp_path.iterdir())


def test_a_checkpoint_whose_weights_do_not_fit_its_variant_is_one_line(tmp_path):
    from ganvoice.export.checkpoint import generator_from_checkpoint
    from ganvoice.models.base import build_generator

    wider = build_generator("fast", {**TINY_FAST, "dim": 48})
    path = tmp_path / "odd.pt"
    torch.save(
        {"generator_variant": "fast", "generator_config": TINY_FAST, "generator": wider.state_dict()}, path
    )
    with pytest.raises(GanvoiceError, match="weights do not fit") as error:
        generator_from_checkpoint(str(path))
    assert "\n" not in str(error.value)
    torch.save({"generator_variant": "fast", "generator_config": {"dim": "wide"}, "generator": {}}, path)
    with pytest.raises(GanvoiceError, match="does not build") as error:
        generator_from_checkpoint(str(path))
    assert "\n" not in str(error.value)


def test_a_stop_signal_to_the_process_group_saves_and_exits(manifest, tmp_path):
    """``timeout`` and a terminal's Ctrl-C signal the whole group, DataLoader workers too: the run still
    saves and exits 0 (a worker killed by the signal used to fail it: "DataLoader worker ... killed")."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "ganvoice.cli", "train", "--config", str(RECIPES / "seed-mlp.toml")]
    command += ["--data", str(manifest), "--out", str(out), "--threads", "1", "--no-progress"]
    settings = ("data.num_workers=1", "data.batch_size=2", "train.log_every=1", "train.tensorboard=false")
    for setting in settings:
        command += ["--set", setting]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "log.jsonl").is_file() or not (out / "log.jsonl").read_text().strip():
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read() if run.poll() else "slow"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert "stopped at step" in stderr and "error" not in stderr
    assert ckpt.latest_checkpoint(out) is not None
