"""The ``ganvoice`` command line: one click group; each command lives beside the code it drives.

Commands are loaded lazily from the table below, so ``ganvoice play`` never imports torch, and a command
whose module is not installed (e.g. ``train`` without the ``[train]`` extra) says which extra it needs.
Errors a user can fix print one line (``error: ...``) and exit with status 2; no bare tracebacks
(set ``GANVOICE_DEBUG=1`` to see them).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from ganvoice import __version__
from ganvoice.errors import GanvoiceError

# name -> ("module:attribute", extra it needs, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "corpus": ("ganvoice.corpus.cli:corpus", "base", "Build a speech corpus with a manifest."),
    "train": ("ganvoice.train.cli:train", "train", "Train a generator from a recipe."),
    "export": ("ganvoice.export.cli:export", "train", "Export a checkpoint to a streaming ONNX model."),
    "info": ("ganvoice.realtime.cli:info", "base", "Print an ONNX model's ganvoice metadata."),
    "play": ("ganvoice.realtime.cli:play", "base", "Stream a model to the sound card or a file."),
    "bench": ("ganvoice.bench.cli:bench", "base", "Latency and throughput benchmarks."),
    "eval": ("ganvoice.evaluate:evaluate", "dev", "Objective quality metrics of a model."),
    "jack": ("ganvoice.realtime.jackclient:jack_command", "jack", "Run a model as a JACK client (live)."),
    "gst-env": ("ganvoice.realtime.gst_env:gst_env", "base", "Print the GStreamer plugin environment."),
}


def _available(name: str) -> bool:
    module = COMMANDS[name][0].split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _load(name: str) -> click.Command:
    target, extra, _ = COMMANDS[name]
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise GanvoiceError(
            f"'ganvoice {name}' needs {missing!s}; install it with: pip install 'ganvoice[{extra}]'"
        ) from exc
    return getattr(module, attribute)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if _available(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        return _load(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="ganvoice")
def cli() -> None:
    """ganvoice: streaming GAN vocoders -- train, export to ONNX, play in real time."""


def run(command: click.Command, args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Run a click command with ganvoice's error policy: one line and exit status 2 for user errors."""
    try:
        command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except GanvoiceError as exc:
        _fail(str(exc))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 -- last line of defence: no bare traceback
        if os.environ.get("GANVOICE_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {exc} (set GANVOICE_DEBUG=1 for the traceback)")


def _fail(message: str) -> None:
    click.echo(f"error: {message.splitlines()[0] if message else 'failed'}", err=True)
    sys.exit(2)


def _short(name: str):
    def entry() -> None:
        try:
            command = _load(name)
        except GanvoiceError as exc:
            _fail(str(exc))
        run(command, prog_name=f"ganvoice-{name}")

    return entry


def main() -> None:
    run(cli, prog_name="ganvoice")


play_main = _short("play")
export_main = _short("export")
train_main = _short("train")
bench_main = _short("bench")

if __name__ == "__main__":
    main()
