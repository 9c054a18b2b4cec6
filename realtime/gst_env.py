"""``ganvoice gst-env``: the environment that lets GStreamer load the ``ganvoice`` elements.

GStreamer's Python plugin loader (Debian: ``gstreamer1.0-python3-plugin-loader``) embeds the system's
Python and loads ``*.py`` elements from ``$GST_PLUGIN_PATH/python``. Two lines make it find ours:

- ``GST_PLUGIN_PATH`` gets the folder that holds ``python/ganvoice_gst.py`` (shipped inside
  ``ganvoice.realtime``);
- the loader's Python must import ganvoice and its dependencies from this environment. For a virtual
  environment that is ``PYTHONUSERBASE=<venv>``: the venv's ``lib/pythonX.Y/site-packages`` then is the
  embedded Python's user site, which (unlike a ``PYTHONPATH`` entry) also runs its ``.pth`` files, so an
  editable install works too. A virtual environment ignores ``PYTHONUSERBASE`` itself. For an install
  outside a venv it is ``PYTHONPATH=<site-packages>``.

The loader's Python must have the same ``X.Y`` as this one (compiled wheels such as numpy and
onnxruntime are built per Python ABI); on Debian 12 both are 3.11.
"""

from __future__ import annotations

import shlex
import sys
import sysconfig
from pathlib import Path

import click

PLUGIN_FOLDER = "gst"
PLUGIN_FILES = ("ganvoice_gst.py", "ganvoicesrc_gst.py")


def plugin_dir() -> Path:
    """The folder to put on ``GST_PLUGIN_PATH`` (it holds ``python/ganvoice_gst.py``)."""
    import ganvoice.realtime

    return Path(ganvoice.realtime.__file__).resolve().parent / PLUGIN_FOLDER


def in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def environment() -> dict[str, str]:
    """The variables to set: ``GST_PLUGIN_PATH`` and ``PYTHONUSERBASE`` (venv) or ``PYTHONPATH``."""
    env = {"GST_PLUGIN_PATH": str(plugin_dir())}
    if in_venv():
        env["PYTHONUSERBASE"] = sys.prefix
    else:
        env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    return env


def shell_lines(env: dict[str, str]) -> list[str]:
    """``export`` lines that prepend to a variable's existing value (for the path lists)."""
    lines = []
    for name, value in env.items():
        if name in ("GST_PLUGIN_PATH", "PYTHONPATH"):
            lines.append(f'export {name}={shlex.quote(value)}"${{{name}:+:${name}}}"')
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return lines


@click.command("gst-env")
def gst_env() -> None:
    """Print the shell lines that let GStreamer load the ganvoice elements: eval "$(ganvoice gst-env)"."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    click.echo(f"# ganvoice GStreamer elements (gst-python's loader must embed Python {version})")
    for line in shell_lines(environment()):
        click.echo(line)
