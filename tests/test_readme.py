"""What a newcomer reads is what the commands take: the README's Usage lines name existing commands and
options, and the synopses of ``ganvoice-play`` and ``ganvoice export`` name every option they have.

Read from the click commands themselves (no command is run).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from ganvoice.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"
#: Console scripts and the ``ganvoice`` words they stand for.
SCRIPTS = {"ganvoice": [], "ganvoice-play": ["play"], "ganvoice-bench": ["bench"]}


def section(title: str) -> str:
    """The README text under the heading ``title`` up to the next heading."""
    text = README.read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", text, re.S | re.M)
    assert match, f"no README section {title!r}"
    return match.group(1)


def usage_lines() -> list[list[str]]:
    block = re.search(r"```sh\n(.*?)```", section("Usage"), re.S).group(1)
    lines = [shlex.split(re.split(r"\s#\s", line)[0]) for line in block.splitlines() if line.strip()]
    return [words for words in lines if words[0] in SCRIPTS]  # not: eval "$(ganvoice gst-env)"


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The click command ``words`` run, and the words after its name."""
    words = SCRIPTS[words[0]] + words[1:]
    command: click.Command = cli
    with click.Context(cli) as ctx:
        while isinstance(command, click.Group) and words and not words[0].startswith("-"):
            found = command.get_command(ctx, words[0])
            assert found is not None, f"no command {words[0]!r}"
            command, words = found, words[1:]
    return command, words


def option_names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in param.opts if name.startswith("--")}


@pytest.mark.parametrize("words", usage_lines(), ids=lambda words: " ".join(words[:3]))
def test_every_usage_line_names_a_command_and_its_options(words):
    if words[:2] == ["ganvoice", "jack"]:
        pytest.importorskip("jack", reason="ganvoice jack needs the [jack] extra")
    command, rest = resolve(words)
    assert not isinstance(command, click.Group), f"{' '.join(words)}: a group, not a command"
    unknown = {word.split("=")[0] for word in rest if word.startswith("--")} - option_names(command)
    assert not unknown, f"{' '.join(words)}: no such option(s) {sorted(unknown)}"


def assert_synopsis_names_every_option(title: str, words: list[str]) -> None:
    text = section(title)
    command, _ = resolve(words)
    options = [param for param in command.params if isinstance(param, click.Option)]
    missing = [
        max(param.opts, key=len)
        for param in options
        if not any(re.search(rf"{re.escape(opt)}(?![\w-])", text) for opt in param.opts)
    ]
    assert not missing, f"README section {title!r} does not name {sorted(missing)}"


def test_the_play_synopsis_names_every_option():
    assert_synopsis_names_every_option("`ganvoice-play` (also `ganvoice play`)", ["ganvoice-play"])


def test_the_export_synopsis_names_every_option():
    pytest.importorskip("torch", reason="ganvoice export needs the [train] extra")
    assert_synopsis_names_every_option("`ganvoice export`", ["ganvoice", "export"])
