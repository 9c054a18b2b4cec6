"""``ganvoice play`` / ``ganvoice-play`` and ``ganvoice info``: the torch-free command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np

from ganvoice.assets import DEMO_AUDIO, asset_path, bundled_model
from ganvoice.errors import DeviceError, GanvoiceError
from ganvoice.fileio import FILE_FOLDER_MISSING, atomic_write_json
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.model import PROVIDERS, open_model, provider_report
from ganvoice.realtime.player import (
    MAX_BLOCKSIZE,
    MAX_PREFILL_S,
    PLAYER_MODES,
    Player,
    PlayerConfig,
    list_devices,
)
from ganvoice.realtime.render import render_to_file
from ganvoice.realtime.sources import SourceChoice, feed_from_stdin, make_source
from ganvoice.realtime.stats import markdown_table

DEMO_OUTPUT = "ganvoice-demo.wav"


def report(summary: dict, show: bool, json_path: str | None) -> None:
    if show:
        click.echo(markdown_table(summary), err=True)
    if json_path:
        atomic_write_json(json_path, summary, sort_keys=True, missing_folder=FILE_FOLDER_MISSING)


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Exported model (.onnx).")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="Audio file or .npy/.npz mel.")
@click.option("--mic", is_flag=True, help="Live resynthesis of the input device.")
@click.option("--noise", is_flag=True, help="Latent noise for a noise model (a smooth random walk).")
@click.option(
    "--stdin", is_flag=True, help="Raw little-endian float32 frames on stdin, channels values each."
)
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True)
@click.option("--threads", type=int, default=None, help="ONNX Runtime threads (default 1).")
@click.option(
    "--blocksize",
    type=int,
    default=256,
    show_default=True,
    help=f"Samples per audio block (1 to {MAX_BLOCKSIZE}); the latency counts one block.",
)
@click.option(
    "--mode",
    type=click.Choice(PLAYER_MODES),
    default="callback",
    show_default=True,
    help="callback: the model runs in the audio callback; buffered: a worker renders --prefill ahead; "
    "low-latency: buffered with a one-frame cushion (for blocks shorter than a model frame).",
)
@click.option(
    "--prefill",
    type=float,
    default=None,
    help="Seconds buffered before sound starts "
    "[buffered: 0.1; low-latency: one frame; live input: 2 blocks].",
)
@click.option("--device", default=None, help="Audio device index or name (see --list-devices).")
@click.option("--list-devices", "show_devices", is_flag=True, help="List audio devices and exit.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False), help="Render to this file instead.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--loop", is_flag=True, help="Loop the input file.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --noise.")
@click.option("--stats", "show_stats", is_flag=True, help="Print the stats table at the end.")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None, help="Write the stats here.")
@click.option("--demo", is_flag=True, help="Play the bundled demo sentence through the bundled model.")
def play(
    model_path,
    input_path,
    mic,
    noise,
    stdin,
    provider,
    threads,
    blocksize,
    mode,
    prefill,
    device,
    show_devices,
    output_path,
    duration,
    loop,
    seed,
    show_stats,
    stats_json,
    demo,
) -> None:
    """Stream a model to the sound card (or, with --output, to a file)."""
    if show_devices:
        click.echo(list_devices())
        return
    _check_numbers(blocksize, duration, prefill)
    if stats_json and not Path(stats_json).parent.is_dir():
        raise GanvoiceError(f"--stats-json {stats_json}: folder {Path(stats_json).parent} does not exist")
    if demo:
        input_path = input_path or str(asset_path(DEMO_AUDIO))
    choice = SourceChoice(input_path, mic, noise, stdin, loop, seed)
    choice.check()
    model = Path(model_path) if model_path else bundled_model(noise)
    engine = Engine(model, provider, threads, compensate_delay=output_path is not None)
    if engine.provider_note and provider == "auto":
        click.echo(f"note: {engine.provider_note}; running on the CPU", err=True)
    source = make_source(choice, engine)
    if stdin:
        feed_from_stdin(source)
    if output_path:
        if mic:
            raise GanvoiceError("--mic needs an audio device; --output renders a file, a mel, noise or stdin")
        summary = render_to_file(engine, source, Path(output_path), duration)
        click.echo(
            f"wrote {output_path} ({summary['seconds']} s, rendered "
            f"{summary['seconds'] / max(summary['wall_s'], 1e-9):.1f}x faster than real time)",
            err=True,
        )
        report(summary, show_stats, stats_json)
        return
    config = PlayerConfig(mode=mode, blocksize=blocksize, device=device, prefill=prefill, duration=duration)
    _play_on_device(engine, source, config, demo, show_stats, stats_json)


def _check_numbers(blocksize: int, duration: float | None, prefill: float | None) -> None:
    if not 0 < blocksize <= MAX_BLOCKSIZE:
        raise GanvoiceError(f"--blocksize must be 1 to {MAX_BLOCKSIZE} samples, not {blocksize}")
    if duration is not None and not 0 < duration < math.inf:  # NaN fails too
        raise GanvoiceError(f"--duration must be a finite number of seconds > 0, not {duration}")
    if prefill is not None and not 0 <= prefill <= MAX_PREFILL_S:
        raise GanvoiceError(f"--prefill must be 0 to {MAX_PREFILL_S:g} seconds, not {prefill}")


def _play_on_device(engine, source, config, demo, show_stats, stats_json) -> None:
    player = Player(engine, source, config)
    try:
        player.start()
    except DeviceError as exc:
        if not demo:
            raise
        reason = str(exc).split(";")[0]
        click.echo(f"note: {reason}; rendering the demo to ./{DEMO_OUTPUT} instead", err=True)
        engine.compensate_delay = True
        summary = render_to_file(engine, source, Path.cwd() / DEMO_OUTPUT, config.duration)
        report(summary, show_stats, stats_json)
        return
    interrupted = False
    try:
        click.echo(_status_line(player), err=True)
        player.wait()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        player.stop()
    summary = player.summary()
    report(summary, show_stats or interrupted, stats_json)


def _status_line(player: Player) -> str:
    engine = player.engine
    return (
        f"playing {engine.metadata.variant} on {engine.provider} at {engine.sample_rate} Hz, "
        f"block {player.config.blocksize}, {player.config.mode} mode, latency {player.latency().describe()} "
        "(Ctrl-C stops)"
    )


@click.command()
@click.argument("model_path", type=click.Path(dir_okay=False))
def info(model_path: str) -> None:
    """Print an exported model's ganvoice metadata, size, opset and the providers that can run it."""
    opened = open_model(model_path, "cpu")
    meta = opened.metadata
    size = Path(model_path).stat().st_size
    lines = [
        f"model:        {model_path} ({size / 1e6:.2f} MB)",
        f"variant:      {meta.variant} ({meta.conditioning} conditioning, {meta.channels} channels)",
        f"sample rate:  {meta.sample_rate} Hz, hop {meta.hop_length}",
        f"delay:        {meta.delay_samples} samples ({meta.delay_ms:.1f} ms), "
        f"flush {meta.flush_length} frames, pad value {meta.pad_value:.4f}",
        f"state:        {len(meta.state)} tensors, {sum(int(np.prod(s.shape)) for s in meta.state)} values",
        f"format:       {meta.format}, opset {meta.extra.get('opset', 'unknown')}, "
        f"ganvoice {meta.ganvoice_version or 'unknown'}",
        f"training:     step {meta.training_step}, checkpoint {meta.checkpoint_sha256 or '(random weights)'}",
    ]
    if meta.mel is not None:
        lines.append(f"mel spec:     {meta.mel.to_json()}")
    extra = {k: v for k, v in meta.extra.items() if k != "opset"}
    if extra:
        lines.append(f"extra:        {json.dumps(extra, sort_keys=True)}")
    lines.append(f"providers:    {provider_report(model_path)}")
    click.echo("\n".join(lines))
