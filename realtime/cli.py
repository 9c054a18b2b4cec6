"""``ganvoice play`` / ``ganvoice-play`` and ``ganvoice info``: the torch-free command line."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from ganvoice.errors import DeviceError, GanvoiceError
from ganvoice.fileio import FILE_FOLDER_MISSING, atomic_write_json, require_folder
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.model import CPU, CUDA, PROVIDERS, cuda_session, open_model
from ganvoice.realtime.player import MODES, Player, PlayerConfig, list_devices
from ganvoice.realtime.sources import FileSource, MelSource, MicSource, NoiseSource, PushSource, load_mel
from ganvoice.realtime.stats import markdown_table

DEFAULT_MODEL = "default.onnx"
NOISE_MODEL = "noise.onnx"
DEMO_AUDIO = "demo.wav"
DEMO_OUTPUT = "ganvoice-demo.wav"
MEL_SUFFIXES = (".npy", ".npz")
#: Samples per engine call when rendering to a file (bigger is faster; the result is the same).
RENDER_BLOCK = 8192
#: soundfile sample format for each output extension (wav keeps the float32 samples exactly).
OUTPUT_SUBTYPES = {".wav": "FLOAT", ".flac": "PCM_24", ".ogg": "VORBIS"}
#: Frames read from stdin at a time.
STDIN_FRAMES = 16
#: How long file rendering waits when a live source (stdin) has no frame yet (seconds).
STARVED_SLEEP_S = 0.002


def assets_dir() -> Path:
    """The bundled assets (``ganvoice/assets``), wherever ganvoice is installed."""
    import ganvoice

    return Path(ganvoice.__file__).resolve().parent / "assets"


def bundled_model(noise: bool) -> Path:
    path = assets_dir() / (NOISE_MODEL if noise else DEFAULT_MODEL)
    if not path.is_file():
        raise GanvoiceError(
            f"no bundled model yet ({path} is missing: it ships with a trained release); "
            "pass --model FILE.onnx (e.g. from 'ganvoice export --variant fast --random -o g.onnx')"
        )
    return path


@dataclass(frozen=True)
class SourceChoice:
    input: str | None
    mic: bool
    noise: bool
    stdin: bool
    loop: bool
    seed: int

    def check(self) -> None:
        chosen = [name for name, on in self._flags() if on]
        if len(chosen) > 1:
            raise GanvoiceError(f"choose one input, not {' and '.join(chosen)}")

    def _flags(self):
        return [
            ("--input", self.input is not None),
            ("--mic", self.mic),
            ("--noise", self.noise),
            ("--stdin", self.stdin),
        ]


def make_source(choice: SourceChoice, engine: Engine):
    """The source for the chosen input, checked against the model's conditioning."""
    meta = engine.metadata
    if meta.conditioning == "noise":
        if choice.input or choice.mic:
            raise GanvoiceError(f"{engine.model_path} is a noise model (it takes no audio); use --noise")
        if choice.stdin:
            return PushSource(meta.channels)
        return NoiseSource(meta.channels, seed=choice.seed)
    if choice.noise:
        raise GanvoiceError(f"{engine.model_path} is a mel model; --noise needs a noise model (--model)")
    if choice.mic:
        return MicSource(meta.mel)
    if choice.stdin:
        return PushSource(meta.channels)
    if choice.input is None:
        raise GanvoiceError("choose an input: --input FILE (audio or .npy mel), --mic, --noise or --stdin")
    if Path(choice.input).suffix.lower() in MEL_SUFFIXES:
        return MelSource(load_mel(choice.input, meta), loop=choice.loop)
    return FileSource(choice.input, meta.mel, loop=choice.loop)


def _stdin_reader(source: PushSource) -> threading.Thread:
    """A thread that pushes raw float32 frames (``channels`` values each) from stdin, then closes."""
    frame_bytes = 4 * source.channels

    def run() -> None:
        stream = sys.stdin.buffer
        try:
            while True:
                data = stream.read(frame_bytes * STDIN_FRAMES)
                usable = len(data) - len(data) % frame_bytes
                if usable:
                    frames = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, source.channels)
                    source.push(np.ascontiguousarray(frames.T))
                if len(data) < frame_bytes * STDIN_FRAMES:
                    break
        finally:
            source.close()

    thread = threading.Thread(target=run, name="ganvoice-stdin", daemon=True)
    thread.start()
    return thread


def render_to_file(engine: Engine, source, path: Path, duration: float | None) -> dict:
    """Render ``source`` through the engine (faster than real time) into ``path``, atomically."""
    from ganvoice.audio import save_audio

    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUBTYPES:
        raise GanvoiceError(f"{path}: unknown audio extension (use one of {', '.join(OUTPUT_SUBTYPES)})")
    require_folder(path, FILE_FOLDER_MISSING)  # before rendering, not only when save_audio writes
    if duration is None and (getattr(source, "loop", False) or isinstance(source, NoiseSource)):
        raise GanvoiceError("an endless input (--loop or --noise) needs --duration with --output")
    engine.prepare(engine.model_rate, RENDER_BLOCK)
    engine.set_source(source)
    audio = _render_all(engine, None if duration is None else round(duration * engine.sample_rate))
    if len(audio) == 0:
        raise GanvoiceError("nothing to write: the input made no audio")
    save_audio(path, audio, engine.sample_rate, subtype=OUTPUT_SUBTYPES[suffix])
    summary = engine.stats.summary()
    seconds = len(audio) / engine.sample_rate
    summary.update(
        seconds=round(seconds, 3),
        provider=engine.provider,
        mode="render",
        blocksize=RENDER_BLOCK,
        sample_rate=engine.sample_rate,
        model=engine.model_path,
        latency_ms=0.0,
        realtime_factor=round(summary["wall_s"] / seconds, 4) if seconds else 0.0,
    )
    return summary


def _render_all(engine: Engine, limit: int | None) -> np.ndarray:
    """Pull the engine's audio until its source ends (or ``limit`` samples), timing every block."""
    pieces, total = [], 0
    block = np.zeros(RENDER_BLOCK, dtype=np.float32)
    while not engine.finished and (limit is None or total < limit):
        start = time.perf_counter()
        got = engine.fill(block)
        if got:
            engine.stats.record(1000.0 * (time.perf_counter() - start))
            engine.stats.blocks += 1
            pieces.append(block[:got].copy())
            total += got
        elif not engine.finished:
            time.sleep(STARVED_SLEEP_S)  # a live source (stdin) has nothing yet
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return audio[:limit]


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
@click.option("--blocksize", type=int, default=256, show_default=True, help="Samples per audio block.")
@click.option("--mode", type=click.Choice(MODES), default="callback", show_default=True)
@click.option(
    "--prefill",
    type=float,
    default=None,
    help="Seconds buffered before sound starts [buffered: 0.1; live input: 2 blocks].",
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
        input_path = input_path or str(assets_dir() / DEMO_AUDIO)
    choice = SourceChoice(input_path, mic, noise, stdin, loop, seed)
    choice.check()
    model = Path(model_path) if model_path else bundled_model(noise)
    engine = Engine(model, provider, threads, compensate_delay=output_path is not None)
    if engine.provider_note and provider == "auto":
        click.echo(f"note: {engine.provider_note}; running on the CPU", err=True)
    source = make_source(choice, engine)
    if stdin:
        _stdin_reader(source)
    if output_path:
        if mic:
            raise GanvoiceError("--mic needs an audio device; --output renders a file, a mel, noise or stdin")
        summary = render_to_file(engine, source, Path(output_path), duration)
        click.echo(
            f"wrote {output_path} ({summary['seconds']} s, {summary['realtime_factor']} x real time)",
            err=True,
        )
        report(summary, show_stats, stats_json)
        return
    config = PlayerConfig(mode=mode, blocksize=blocksize, device=device, prefill=prefill, duration=duration)
    _play_on_device(engine, source, config, demo, show_stats, stats_json)


def _check_numbers(blocksize: int, duration: float | None, prefill: float | None) -> None:
    if blocksize <= 0:
        raise GanvoiceError(f"--blocksize must be a positive number of samples, not {blocksize}")
    if duration is not None and duration <= 0:
        raise GanvoiceError(f"--duration must be more than 0 seconds, not {duration}")
    if prefill is not None and prefill < 0:
        raise GanvoiceError(f"--prefill must be 0 seconds or more, not {prefill}")


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
    s = player.summary()
    return (
        f"playing {engine.metadata.variant} on {engine.provider} at {engine.sample_rate} Hz, "
        f"block {player.config.blocksize}, {player.config.mode} mode, latency {s['latency_ms']:.1f} ms "
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


def provider_report(model_path: str) -> str:
    """Which execution providers can run the model here, e.g. ``CPU: yes, CUDA: no (reason)``."""
    import onnxruntime as ort

    parts = []
    for name in ort.get_available_providers():
        short = name.replace("ExecutionProvider", "")
        if name == CPU:
            parts.append(f"{short}: yes")
        elif name == CUDA:
            session, reason = cuda_session(model_path)
            parts.append(f"{short}: yes" if session is not None else f"{short}: no ({reason})")
        else:
            parts.append(f"{short}: not checked")
    return ", ".join(parts)
