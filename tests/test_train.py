"""The trainer for real, tiny: every recipe trains 2 steps, exact resume, Ctrl-C, NaN stop, bad inputs."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic_corpus import write_corpus

from ganvoice.errors import GanvoiceError
from ganvoice.losses import PHASE_TERMS
from ganvoice.train import checkpoint as ckpt
from ganvoice.train import trainer
from ganvoice.train.config import deep_merge, load_recipe
from ganvoice.train.trainer import RunOptions, TrainingDiverged, build_state, run_training

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
SEGMENT = 2048
SMALL_MPD = {"periods": [2, 3], "channels": [4, 8]}
SMALL_MRD = {"resolutions": [[256, 64, 256]], "channels": 4, "layers": 2}
SMALL_MSD = {"scales": 1, "channels": [16] * 7, "groups": [1, 4, 4, 4, 4, 4, 1]}
TINY_FAST = {"dim": 16, "intermediate_dim": 32, "num_blocks": 1, "head_n_fft": 512}
TINY = {
    "fast": {"generator": {"config": TINY_FAST}, "discriminators": {"mpd": SMALL_MPD, "mrd": SMALL_MRD}},
    "fast-phase": {
        "generator": {"config": {**TINY_FAST, "head_n_fft": 1024}},
        "discriminators": {"mpd": SMALL_MPD, "mrd": SMALL_MRD},
    },
    "fast-phase-gan": {
        "generator": {"config": {**TINY_FAST, "head_n_fft": 1024}},
        "discriminators": {"mrd": SMALL_MRD},
    },
    "fast-noise": {
        "generator": {"config": TINY_FAST},
        "discriminators": {"mpd": SMALL_MPD, "mrd": SMALL_MRD},
        "train": {"gan_start_step": 0},
    },
    "hifigan-v1": {
        "generator": {"config": {"upsample_initial_channel": 16}},
        "discriminators": {"mpd": SMALL_MPD, "msd": SMALL_MSD},
    },
    "hifigan-v2": {
        "generator": {"config": {"upsample_initial_channel": 16}},
        "discriminators": {"mpd": SMALL_MPD, "msd": SMALL_MSD},
    },
    "hifigan-v3": {
        "generator": {"config": {"upsample_initial_channel": 16}},
        "discriminators": {"mpd": SMALL_MPD, "msd": SMALL_MSD},
    },
    "seed-mlp": {
        "generator": {"config": {"hidden": 8, "clip_length": SEGMENT}},
        "discriminators": {"mlp": {"clip_length": SEGMENT, "hidden": 8}},
        "train": {"gan_start_step": 0},
    },
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_recipe(name: str, **sections):
    """A recipe file with tiny sizes: 2 steps (spectral then GAN where the recipe has a warm-up)."""
    overrides = {
        "data": {"segment_samples": SEGMENT, "batch_size": 2, "num_workers": 0, "val_clips": 2},
        "train": {"max_steps": 2, "gan_start_step": 1, "val_every": 1, "log_every": 1, "tensorboard": False},
    }
    overrides = deep_merge(deep_merge(overrides, TINY[name]), sections)
    return load_recipe(RECIPES / f"{name}.toml", overrides)


def test_every_recipe_is_covered():
    assert sorted(TINY) == sorted(p.stem for p in RECIPES.glob("*.toml"))


@pytest.mark.parametrize("name", sorted(TINY))
def test_recipe_trains_two_steps(name, manifest, tmp_path):
    recipe = tiny_recipe(name)
    initial = build_state(recipe, torch.device("cpu"))
    result = run_training(recipe, RunOptions(data=manifest, out=tmp_path / "run", progress=False))
    assert result.step == 2 and len(result.history) == 2 and result.stopped == "done"
    for logs in result.history:
        assert all(math.isfinite(v) for v in logs.values()), logs
    assert "adv" in result.history[-1] and "disc" in result.history[-1]
    if result.state.generator.conditioning == "mel":
        assert {"mel", "mrstft", "fm"} <= set(result.history[-1])
        weighted_phase_terms = {k for k, v in recipe.train.loss_weights.items() if k in PHASE_TERMS and v > 0}
        assert weighted_phase_terms <= set(result.history[-1])
    else:
        assert "mel" not in result.history[-1]
    for before, after in (
        (initial.generator, result.state.generator),
        (initial.discriminators, result.state.discriminators),
    ):
        for (key, old), new in zip(before.state_dict().items(), after.state_dict().values()):
            if old.is_floating_point() and not key.endswith(("weight_u", "weight_v")):
                assert not torch.equal(old, new), f"{name}: {key} did not move"
    payload = ckpt.load_checkpoint(result.checkpoint)
    assert payload["generator_variant"] == recipe.generator.variant and payload["step"] == 2
    assert isinstance(payload["generator_config"]["mel"], dict)
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def test_tensorboard_and_log_are_written(manifest, tmp_path):
    recipe = tiny_recipe("fast", train={"tensorboard": True, "max_steps": 1})
    run_training(recipe, RunOptions(data=manifest, out=tmp_path / "run", progress=False))
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    assert "val/mel_l1" in (tmp_path / "run" / "log.jsonl").read_text()


def test_resume_is_exact(manifest, tmp_path):
    sections = {"train": {"max_steps": 6, "gan_start_step": 2, "val_every": 2, "checkpoint_every": 2}}
    recipe = tiny_recipe("fast", **sections, data={"augment": {"noise_prob": 0.5}})
    straight = run_training(recipe, RunOptions(data=manifest, out=tmp_path / "straight", progress=False))
    half = tiny_recipe(
        "fast", **deep_merge(sections, {"train": {"max_steps": 3}}), data={"augment": {"noise_prob": 0.5}}
    )
    first = run_training(half, RunOptions(data=manifest, out=tmp_path / "split", progress=False))
    assert first.step == 3
    second = run_training(
        recipe, RunOptions(data=manifest, out=tmp_path / "split", resume=True, progress=False)
    )
    assert [h["step"] for h in second.history] == [4, 5, 6]
    for a, b in zip(straight.history[3:], second.history):
        assert a.keys() == b.keys()
        for key in a:
            assert abs(a[key] - b[key]) <= 1e-6 * max(1.0, abs(a[key])), (key, a[key], b[key])
    for x, y in zip(straight.state.generator.parameters(), second.state.generator.parameters()):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-7)
    kept = [p.name for p in ckpt.step_checkpoints(tmp_path / "straight")]
    assert kept == [f"step_{s:09d}.pt" for s in (2, 4, 6)]


def test_keep_last_prunes_old_checkpoints(manifest, tmp_path):
    recipe = tiny_recipe("seed-mlp", train={"max_steps": 4, "checkpoint_every": 1, "keep_last": 2})
    run_training(recipe, RunOptions(data=manifest, out=tmp_path, progress=False))
    assert [p.name for p in ckpt.step_checkpoints(tmp_path)] == ["step_000000003.pt", "step_000000004.pt"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_signal_saves_and_stops(manifest, tmp_path, monkeypatch):
    real_step = trainer.train_step

    def step_then_interrupt(state, *args):
        logs = real_step(state, *args)
        if state.step == 2:
            signal.raise_signal(signal.SIGINT)
        return logs

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    recipe = tiny_recipe("fast", train={"max_steps": 5})
    result = run_training(recipe, RunOptions(data=manifest, out=tmp_path, progress=False))
    assert result.stopped == "interrupted" and result.step == 2
    assert result.checkpoint == tmp_path / "checkpoints" / "step_000000002.pt"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(manifest, tmp_path):
    good = run_training(tiny_recipe("fast"), RunOptions(data=manifest, out=tmp_path, progress=False))
    bad = tiny_recipe("fast", train={"max_steps": 4, "loss_weights": {"mel": math.inf}})
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 3") as info:
        run_training(bad, RunOptions(data=manifest, out=tmp_path, resume=True, progress=False))
    assert str(good.checkpoint) in str(info.value) and "\n" not in str(info.value)
    assert ckpt.latest_checkpoint(tmp_path) == good.checkpoint


def test_fine_tuning_loads_weights_and_rejects_other_variants(manifest, tmp_path):
    base = run_training(tiny_recipe("fast"), RunOptions(data=manifest, out=tmp_path / "base", progress=False))
    recipe = tiny_recipe("fast", train={"max_steps": 1})
    tuned = run_training(recipe, RunOptions(data=manifest, out=tmp_path / "tuned", init=base.checkpoint))
    assert tuned.step == 1  # the step count starts again; the weights came from the checkpoint
    with pytest.raises(GanvoiceError, match="holds a 'fast' generator, the recipe trains 'seed-mlp'"):
        run_training(tiny_recipe("seed-mlp"), RunOptions(manifest, tmp_path / "other", init=base.checkpoint))
    with pytest.raises(GanvoiceError, match="holds a 'fast' generator"):
        run_training(tiny_recipe("seed-mlp"), RunOptions(manifest, tmp_path / "base", resume=True))
    wider = tiny_recipe("fast", generator={"config": {"dim": 24}})
    with pytest.raises(GanvoiceError, match="generator weights do not fit"):
        run_training(wider, RunOptions(manifest, tmp_path / "wider", init=base.checkpoint))


def test_fine_tuning_under_other_discriminators_starts_them_fresh(manifest, tmp_path, capsys):
    """A GAN polish recipe (fast-phase-gan: MRD only) fine-tunes from a checkpoint that has MPD weights too;
    an exact resume under other discriminators stays a short one-line error."""
    base = run_training(
        tiny_recipe("fast-phase"), RunOptions(data=manifest, out=tmp_path / "base", progress=False)
    )
    assert "mpd" in {key.split(".")[0] for key in torch.load(base.checkpoint)["discriminators"]}
    polish = tiny_recipe("fast-phase-gan", train={"max_steps": 1})
    tuned = run_training(
        polish, RunOptions(manifest, tmp_path / "tuned", init=base.checkpoint, progress=False)
    )
    assert tuned.step == 1 and "they start fresh" in capsys.readouterr().err
    longer = tiny_recipe("fast-phase-gan", train={"max_steps": 3})
    with pytest.raises(GanvoiceError, match="discriminator weights do not fit") as error:
        run_training(longer, RunOptions(manifest, tmp_path / "base", resume=True, progress=False))
    assert "unexpected" in str(error.value) and len(str(error.value)) < 300


def test_compact_checkpoint_continues_step_and_schedule(manifest, tmp_path):
    """The compact checkpoint (fp16 weights, no optimizer state) goes on at its step and learning rate."""
    recipe = tiny_recipe("fast-phase", train={"max_steps": 3, "gan_start_step": 100}, optim={"lr_decay": 0.5})
    full = run_training(recipe, RunOptions(data=manifest, out=tmp_path / "a", progress=False))
    compact = ckpt.save_finetune_checkpoint(full.checkpoint, tmp_path / "compact.pt")
    assert compact.stat().st_size < 0.6 * full.checkpoint.stat().st_size
    longer = tiny_recipe("fast-phase", train={"max_steps": 5, "gan_start_step": 100}, optim={"lr_decay": 0.5})
    result = run_training(longer, RunOptions(data=manifest, out=tmp_path / "b", continue_from=compact))
    assert [logs["step"] for logs in result.history] == [4, 5] and result.step == 5
    assert result.history[0]["lr_g"] == pytest.approx(recipe.optim.lr_g * 0.5**4)
    fresh = run_training(longer, RunOptions(data=manifest, out=tmp_path / "c", init=compact))
    assert fresh.history[0]["step"] == 1 and fresh.history[0]["lr_g"] == pytest.approx(
        recipe.optim.lr_g * 0.5
    )


def test_averaged_checkpoint_is_the_mean_of_its_sources(manifest, tmp_path):
    first = run_training(tiny_recipe("fast", train={"max_steps": 1}), RunOptions(manifest, tmp_path / "a"))
    again = tiny_recipe("fast", train={"max_steps": 2})
    second = run_training(again, RunOptions(manifest, tmp_path / "a", resume=True))
    averaged = ckpt.average_checkpoints([first.checkpoint, second.checkpoint], tmp_path / "mean.pt")
    a, b, mean = (ckpt.load_checkpoint(p) for p in (first.checkpoint, second.checkpoint, averaged))
    name = "embed.weight"
    assert not torch.equal(a["generator"][name], b["generator"][name])
    assert torch.allclose(mean["generator"][name], (a["generator"][name] + b["generator"][name]) / 2)
    assert mean["step"] == 2 and mean["averaged_steps"] == [1, 2]
    wider = tiny_recipe("fast", generator={"config": {"dim": 24}})
    other = run_training(wider, RunOptions(manifest, tmp_path / "w"))
    with pytest.raises(GanvoiceError, match="cannot average"):
        ckpt.average_checkpoints([other.checkpoint, second.checkpoint], tmp_path / "bad.pt")


def test_existing_run_needs_resume(manifest, tmp_path):
    run_training(tiny_recipe("seed-mlp"), RunOptions(data=manifest, out=tmp_path, progress=False))
    with pytest.raises(GanvoiceError, match="pass --resume"):
        run_training(tiny_recipe("seed-mlp"), RunOptions(data=manifest, out=tmp_path, progress=False))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"train": {"bogus": 1}}, "unknown key train.bogus"),
        ({"bogus": {}}, "unknown section or key 'bogus'"),
        ({"generator": {"config": {"bogus": 1}}}, "unknown config keys for generator variant 'fast': bogus"),
        ({"discriminators": {"mpd": {"bogus": 1}}}, "unknown config keys for discriminator 'mpd'"),
        ({"train": {"loss_weights": {"bogus": 1.0}}}, "unknown loss weight 'bogus'"),
        ({"train": {"adversarial": "wgan"}}, "unknown adversarial loss"),
        ({"generator": {"config": {"conditioning": "noise", "latent_channels": 4}}}, "gan_start_step = 0"),
    ],
)
def test_bad_recipes_are_one_line_errors(overrides, message):
    with pytest.raises(GanvoiceError, match=message) as info:
        load_recipe(RECIPES / "fast.toml", overrides)
    assert "\n" not in str(info.value)


def test_bad_data_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "manifest.jsonl").write_text("")
    short = write_corpus(tmp_path / "short", [("sine", 0.05, "train", "a")])
    for data, message in ((tmp_path / "empty", "is empty"), (short, "shorter than one segment")):
        with pytest.raises(GanvoiceError, match=message):
            run_training(tiny_recipe("seed-mlp"), RunOptions(data=data, out=tmp_path / "out", progress=False))


def test_cli_prints_one_line_and_exits_2(tmp_path):
    command = [sys.executable, "-m", "ganvoice.cli", "train", "--config", str(RECIPES / "fast.toml")]
    command += ["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), "--set", "train.x=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: recipe: unknown key train.x")
    assert len(done.stderr.strip().splitlines()) == 1


def test_bf16_autocast_trains(manifest, tmp_path):
    recipe = tiny_recipe("fast", train={"precision": "bf16"})
    result = run_training(recipe, RunOptions(data=manifest, out=tmp_path, progress=False))
    assert result.step == 2 and all(math.isfinite(v) for h in result.history for v in h.values())
    assert all(p.dtype == torch.float32 for p in result.state.generator.parameters())
