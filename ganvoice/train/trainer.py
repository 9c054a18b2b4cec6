"""The training run: build the state from a recipe, loop over steps, validate, log, checkpoint.

Single process or plain DDP under ``torchrun`` (``gloo`` on the CPU, ``nccl`` on CUDA). Rank 0 validates,
logs and writes checkpoints; every rank stops at the same step (a stop request or a non-finite loss on
any rank is shared each step).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ganvoice.data import SegmentDataset, StepSampler, collate, limit_numpy_blas_threads, worker_init
from ganvoice.errors import GanvoiceError
from ganvoice.fileio import atomic_write_text
from ganvoice.losses import (
    PHASE_TERMS,
    MelL1Loss,
    MultiResolutionSTFTLoss,
    PhaseLosses,
    adversarial,
    weights_from,
)
from ganvoice.models.base import Generator, build_generator, make_config
from ganvoice.models.discriminators import build_discriminators
from ganvoice.train import checkpoint as ckpt
from ganvoice.train.config import Recipe
from ganvoice.train.step import StepSetup, TrainState, Validation, train_step, validate


class TrainingDiverged(GanvoiceError):
    """A loss became NaN or infinite."""


@dataclass
class RunOptions:
    data: Path
    out: Path
    resume: bool = False
    init: Path | None = None
    continue_from: Path | None = None  # a (compact) checkpoint whose step and LR schedule go on
    device: str = "auto"
    progress: bool = True
    threads: int | None = None  # torch intra-op threads (None: leave torch's default)


@dataclass
class RunResult:
    step: int
    checkpoint: Path | None
    history: list[dict] = field(default_factory=list)  # logged scalars of every step run in this call
    stopped: str = "done"  # "done" | "interrupted"
    state: TrainState | None = field(default=None, repr=False)  # the final state (for tests and tools)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistInfo:
        return cls(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def main(self) -> bool:
        return self.rank == 0


def select_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise GanvoiceError("--device cuda: no CUDA device is available")
        return torch.device("cuda", info.local_rank % torch.cuda.device_count())
    if name != "cpu":
        raise GanvoiceError(f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device("cpu")


# ------------------------------------------------------------------------------------------ building
def generator_overrides(recipe: Recipe) -> dict:
    """The generator's FULL config as plain overrides for ``make_config`` (the mel spec as a dict), so a
    checkpoint rebuilds the same model even if the registry's defaults change later."""
    config = make_config(recipe.generator.variant, recipe.generator.config)
    values = dataclasses.asdict(config)
    values["mel"] = config.spec.to_dict()
    return values


def build_state(recipe: Recipe, device: torch.device) -> TrainState:
    """Fresh generator, discriminators, AdamW optimisers and exponential LR schedulers."""
    torch.manual_seed(recipe.train.seed)
    generator = build_generator(recipe.generator.variant, recipe.generator.config).to(device)
    discriminators = build_discriminators(recipe.discriminators).to(device) if recipe.discriminators else None
    optim = recipe.optim

    def adamw(params, lr):
        return torch.optim.AdamW(params, lr=lr, betas=optim.betas, weight_decay=optim.weight_decay)

    opt_g = adamw(generator.parameters(), optim.lr_g)
    opt_d = adamw(discriminators.parameters(), optim.lr_d) if discriminators is not None else None
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, optim.lr_decay)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, optim.lr_decay) if opt_d else None
    return TrainState(generator, discriminators, opt_g, opt_d, sched_g, sched_d)


def state_payload(state: TrainState, recipe: Recipe, val_metric: float | None) -> dict:
    payload = ckpt.payload_header(recipe.generator.variant, generator_overrides(recipe), state.step)
    payload.update(
        generator=state.generator.state_dict(),
        generator_info=state.generator.describe(),
        discriminator_config=recipe.discriminators,
        discriminators=state.discriminators.state_dict() if state.discriminators else {},
        optimizer_g=state.opt_g.state_dict(),
        optimizer_d=state.opt_d.state_dict() if state.opt_d else {},
        scheduler_g=state.sched_g.state_dict(),
        scheduler_d=state.sched_d.state_dict() if state.sched_d else {},
        best_val=state.best_val,
        val_metric=val_metric,
        rng=ckpt.rng_state(),
        recipe=recipe.to_dict(),
    )
    return payload


def restore_state(state: TrainState, payload: dict, path: Path, variant: str) -> None:
    """Exact resume: weights, optimisers, schedulers, step, best metric and RNG states."""
    load_into(state, payload, path, variant)
    state.opt_g.load_state_dict(payload["optimizer_g"])
    state.sched_g.load_state_dict(payload["scheduler_g"])
    if state.opt_d is not None and payload.get("optimizer_d"):
        state.opt_d.load_state_dict(payload["optimizer_d"])
        state.sched_d.load_state_dict(payload["scheduler_d"])
    state.step = int(payload["step"])
    state.best_val = float(payload.get("best_val", math.inf))
    ckpt.set_rng_state(payload["rng"])


def continue_schedule(state: TrainState, payload: dict, path: Path, variant: str) -> None:
    """Weights, step, LR schedules and best metric of a (compact) checkpoint; optimizer moments start
    fresh (AdamW re-estimates them within a few hundred steps)."""
    load_into(state, payload, path, variant, exact=False)
    state.step = int(payload["step"])
    state.best_val = float(payload.get("best_val", math.inf))
    pairs = ((state.opt_g, state.sched_g, "scheduler_g"), (state.opt_d, state.sched_d, "scheduler_d"))
    for optimizer, scheduler, key in pairs:
        if optimizer is None or not payload.get(key):
            continue
        scheduler.load_state_dict(payload[key])
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr


def load_into(state: TrainState, payload: dict, path: Path, variant: str, *, exact: bool = True) -> None:
    """Generator and discriminator weights only; checks the variant first. Not ``exact`` (fine-tuning
    or continuing under another recipe): discriminators that do not fit the recipe start fresh."""
    ckpt.check_variant(payload, variant, path)
    ckpt.load_weights(state.generator, payload["generator"], "generator", path)
    if state.discriminators is None or not payload.get("discriminators"):
        return
    mismatch = ckpt.weights_mismatch(state.discriminators, payload["discriminators"])
    if mismatch and not exact:
        print(
            f"{path}: its discriminators do not fit this recipe ({mismatch}); they start fresh",
            file=sys.stderr,
        )
        return
    ckpt.load_weights(state.discriminators, payload["discriminators"], "discriminator", path)


def make_setup(recipe: Recipe, state: TrainState, device: torch.device) -> StepSetup:
    spec = make_config(recipe.generator.variant, recipe.generator.config).spec
    return StepSetup(
        weights=weights_from(recipe.train.loss_weights),
        adversarial=adversarial(recipe.train.adversarial),
        mel_loss=MelL1Loss(spec).to(device),
        stft_loss=MultiResolutionSTFTLoss().to(device),
        phase_loss=_phase_loss(recipe, state, spec, device),
        gan_start_step=recipe.train.gan_start_step,
        conditioning=state.generator.conditioning,
        grad_clip=recipe.optim.grad_clip,
        device_type=device.type,
        bf16=recipe.train.precision == "bf16",
    )


def _phase_loss(recipe: Recipe, state: TrainState, spec, device: torch.device) -> PhaseLosses | None:
    """The head-frame losses when the recipe weights any; the generator must expose its frames."""
    weights = weights_from(recipe.train.loss_weights)
    if not any(weights[name] > 0 for name in PHASE_TERMS):
        return None
    if type(state.generator).forward_with_frames is Generator.forward_with_frames:
        raise GanvoiceError(
            f"recipe: the phase losses ({', '.join(PHASE_TERMS)}) need a generator with a spectral head "
            f"(fast), not {recipe.generator.variant!r}"
        )
    head_n_fft = getattr(state.generator.config, "head_n_fft", spec.n_fft)
    if head_n_fft != spec.n_fft:
        raise GanvoiceError(f"recipe: the phase losses need head_n_fft == the mel's n_fft ({spec.n_fft})")
    return PhaseLosses(spec, recipe.train.phase_weighting).to(device)


# ------------------------------------------------------------------------------------------- data
def build_datasets(
    recipe: Recipe, data: Path, with_mel: bool
) -> tuple[SegmentDataset, SegmentDataset | None]:
    spec = make_config(recipe.generator.variant, recipe.generator.config).spec
    common = dict(segment_samples=recipe.data.segment_samples, spec=spec, seed=recipe.train.seed)
    train_set = SegmentDataset(data, "train", augment=recipe.data.augment, with_mel=with_mel, **common)
    try:
        val_set = SegmentDataset(data, "val", with_mel=True, **common)
    except GanvoiceError as exc:
        print(f"note: no validation ({exc})", file=sys.stderr)
        val_set = None
    return train_set, val_set


TRAIN_NOISE, VAL_NOISE = 1, 2  # purposes: keep the training and validation noise streams apart


def noise(
    shape: tuple[int, ...], seed: int, step: int, rank: int, purpose: int = TRAIN_NOISE
) -> torch.Tensor:
    """Latent ``z``: standard normal, a pure function of ``(seed, step, rank, purpose)``."""
    torch_seed = int(np.random.default_rng([seed, step, rank, purpose]).integers(1 << 62))
    return torch.randn(shape, generator=torch.Generator().manual_seed(torch_seed))


def validation_batch(val_set: SegmentDataset, count: int, latent: tuple[int, int] | None, seed: int):
    """Fixed validation segments: ``(cond [V, C, T], real [V, N])`` (draw 0; noise from the seed)."""
    items = collate([val_set[(0, i)] for i in range(min(count, len(val_set)))])
    real = items["audio"]
    if latent is None:
        return items["mel"], real
    channels, frames = latent
    return noise((len(real), channels, frames), seed, 0, 0, VAL_NOISE), real


# ------------------------------------------------------------------------------------------ logging
class Logger:
    """TensorBoard (optional) + ``log.jsonl`` on rank 0; a no-op on other ranks."""

    def __init__(self, out: Path, enabled: bool, tensorboard: bool, sample_rate: int):
        self.enabled, self.sample_rate, self.writer = enabled, sample_rate, None
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(out / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115 -- closed in close()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **{f"{prefix}/{k}": v for k, v in values.items()}}) + "\n")
        self.jsonl.flush()
        if self.writer:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def validation(self, step: int, result: Validation, clips: int) -> None:
        self.scalars(step, {"mel_l1": result.metric}, "val")
        if not (self.enabled and self.writer):
            return
        for i in range(min(clips, len(result.fake))):
            audio = result.fake[i].clamp(-1, 1).cpu()
            self.writer.add_audio(f"val/audio_{i}", audio.unsqueeze(0), step, self.sample_rate)
            image = torch.cat([result.real_mel[i], result.fake_mel[i]], dim=0).flip(0).cpu()
            image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-6)
            self.writer.add_image(f"val/mel_{i}_real_over_fake", image.unsqueeze(0), step)

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            if self.writer:
                self.writer.close()


@contextmanager
def stop_on_signals() -> Iterator[dict]:
    """SIGINT/SIGTERM set ``flag["stop"]`` (the loop saves and exits) instead of killing the run."""
    flag = {"stop": False}
    if not _in_main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["stop"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _shared_flags(stop: bool, bad: bool, info: DistInfo, device: torch.device) -> tuple[bool, bool]:
    if info.world_size == 1:
        return stop, bad
    flags = torch.tensor([float(stop), float(bad)], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0]), bool(flags[1])


# --------------------------------------------------------------------------------------------- run
def run_training(recipe: Recipe, options: RunOptions) -> RunResult:
    """Train ``recipe`` on the manifest ``options.data`` into ``options.out`` (see module docstring)."""
    info = DistInfo.from_env()
    device = select_device(options.device, info)
    if options.threads:
        torch.set_num_threads(options.threads)
    limit_numpy_blas_threads(1)  # the data path's small numpy matmuls; torch keeps its own threads
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # denormal floats slow CPU convolutions several-fold
    if info.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(recipe, options, info, device)
    finally:
        if info.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _prepare(recipe: Recipe, options: RunOptions, state: TrainState) -> None:
    """Resume (``--resume``), fine-tune (``--init``) or start fresh; refuse to overwrite a run."""
    variant = recipe.generator.variant
    latest = ckpt.resume_checkpoint(options.out)  # the newest step checkpoint, else best.pt
    if latest is not None and not options.resume:
        raise GanvoiceError(f"{options.out} already holds checkpoints; pass --resume or choose another --out")
    if latest is not None:
        restore_state(state, ckpt.load_checkpoint(latest), latest, variant)
        print(f"resuming from {latest} (step {state.step})", file=sys.stderr)
    elif options.continue_from is not None:
        continue_schedule(
            state, ckpt.load_checkpoint(options.continue_from), Path(options.continue_from), variant
        )
        print(f"continuing from {options.continue_from} (step {state.step})", file=sys.stderr)
    elif options.init is not None:
        load_into(state, ckpt.load_checkpoint(options.init), Path(options.init), variant, exact=False)
        print(f"fine-tuning from {options.init}", file=sys.stderr)


@dataclass
class Run:
    """One training run as its loop sees it: the recipe and options, where it runs, the model state,
    the step setup, the data (``loader``; ``val``: the fixed validation batch or None; ``latent``: the
    noise shape of an unconditional generator, else None) and the logger. Built by :func:`_run`."""

    recipe: Recipe
    options: RunOptions
    info: DistInfo
    device: torch.device
    state: TrainState
    setup: StepSetup
    loader: DataLoader
    val: tuple[torch.Tensor, torch.Tensor] | None
    latent: tuple[int, int] | None
    logger: Logger

    @property
    def out(self) -> Path:
        return Path(self.options.out)


def _run(recipe: Recipe, options: RunOptions, info: DistInfo, device: torch.device) -> RunResult:
    out, train = Path(options.out), recipe.train
    state = build_state(recipe, device)
    _prepare(recipe, options, state)
    conditioning = state.generator.conditioning
    hop = state.generator.hop_length
    if recipe.data.segment_samples % hop:
        raise GanvoiceError(f"data.segment_samples must be a multiple of the generator's hop ({hop})")
    train_set, val_set = build_datasets(recipe, options.data, with_mel=conditioning == "mel")
    latent = None if conditioning == "mel" else (state.generator.channels, recipe.data.segment_samples // hop)
    if info.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        state.g_model = DDP(state.generator, device_ids=ids)
        if state.discriminators is not None:
            state.d_model = DDP(state.discriminators, device_ids=ids)
    setup = make_setup(recipe, state, device)
    spec = make_config(recipe.generator.variant, recipe.generator.config).spec
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "recipe.json", json.dumps(recipe.to_dict(), indent=2, default=str))
        ckpt.remove_partial_files(out)  # left by a killed run's checkpoint write
        ckpt.trim_log(out / "log.jsonl", state.step)  # steps logged after the checkpoint we continue from
    logger = Logger(out, info.main, train.tensorboard, spec.sample_rate)
    try:
        val = validation_batch(val_set, recipe.data.val_clips, latent, train.seed) if val_set else None
        sampler = StepSampler(
            train_set.clip_weights(recipe.data.source_weights),
            recipe.data.batch_size,
            seed=train.seed,
            rank=info.rank,
            world_size=info.world_size,
            start_step=state.step,
            stop_step=max(state.step, train.max_steps),
        )
        loader = DataLoader(
            train_set,
            batch_sampler=sampler,
            num_workers=recipe.data.num_workers,
            collate_fn=collate,
            worker_init_fn=worker_init,
            pin_memory=device.type == "cuda",
        )
        return _loop(Run(recipe, options, info, device, state, setup, loader, val, latent, logger))
    finally:
        logger.close()


def _loop(run: Run) -> RunResult:
    from tqdm import tqdm

    state, info, device, latent, logger = run.state, run.info, run.device, run.latent, run.logger
    train, out = run.recipe.train, run.out
    result = RunResult(step=state.step, checkpoint=None)
    last_val: float | None = None
    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=train.max_steps,
        initial=state.step,
        unit="step",
        disable=not (run.options.progress and info.main),
        mininterval=1.0 if interactive else 30.0,
        dynamic_ncols=True,
    )
    started, started_step = time.perf_counter(), state.step
    with stop_on_signals() as flag:
        for batch in run.loader:
            real = batch["audio"].to(device, non_blocking=True)
            if latent is None:
                cond = batch["mel"].to(device, non_blocking=True)
            else:
                cond = noise((len(real), *latent), train.seed, state.step, info.rank).to(device)
            logs = train_step(state, cond, real, run.setup)
            bad = not all(math.isfinite(v) for v in logs.values())
            stop, bad = _shared_flags(flag["stop"], bad, info, device)
            if bad:
                bar.close()
                last = ckpt.latest_checkpoint(out)
                raise TrainingDiverged(
                    f"non-finite loss at step {state.step} ({_format(logs)}); "
                    f"last good checkpoint: {last or 'none'}"
                )
            result.history.append({"step": state.step, **logs})
            bar.update(1)
            if info.main and (state.step % train.log_every == 0 or state.step == 1):
                rate = (state.step - started_step) / max(time.perf_counter() - started, 1e-9)
                logger.scalars(state.step, {**logs, "steps_per_s": rate}, "train")
                bar.set_postfix_str(_format(logs, keys=("mel", "adv", "disc")), refresh=False)
            if info.main and run.val is not None and state.step % train.val_every == 0:
                last_val = _validate(run)
            if info.main and state.step % train.checkpoint_every == 0:
                result.checkpoint = _save(state, run.recipe, out, last_val)
            if stop:
                result.stopped = "interrupted"
                break
    bar.close()
    if info.main and (result.checkpoint is None or result.checkpoint.name != ckpt.step_name(state.step)):
        result.checkpoint = _save(state, run.recipe, out, last_val)
    if info.world_size > 1:
        dist.barrier()
    result.step, result.state = state.step, state
    if result.stopped == "interrupted" and info.main:
        print(f"stopped at step {state.step}; saved {result.checkpoint}", file=sys.stderr)
    return result


def _validate(run: Run) -> float:
    state, recipe, (cond, real) = run.state, run.recipe, run.val
    result = validate(
        state.generator, cond.to(run.device), real.to(run.device), run.setup.mel_loss, recipe.data.batch_size
    )
    run.logger.validation(state.step, result, recipe.train.val_audio)
    if result.metric < state.best_val:
        state.best_val = result.metric
        ckpt.save_best(state_payload(state, recipe, result.metric), run.out)
    return result.metric


def _save(state: TrainState, recipe: Recipe, out: Path, val_metric: float | None) -> Path:
    return ckpt.save_step_checkpoint(state_payload(state, recipe, val_metric), out, recipe.train.keep_last)


def _format(logs: dict[str, float], keys: tuple[str, ...] | None = None) -> str:
    items = [(k, v) for k, v in logs.items() if keys is None or k in keys]
    return " ".join(f"{k}={v:.4g}" for k, v in items)
