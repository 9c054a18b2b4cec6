"""``ganvoice corpus``: build a speech corpus (clips + manifest.jsonl) from local sources."""

from __future__ import annotations

from pathlib import Path

import click

from ganvoice.corpus.build import DEFAULT_MAX_SYNTHETIC, CorpusConfig, build_corpus, summary_table
from ganvoice.corpus.sources import DEFAULT_SOURCES, SOURCES

_SOURCE_HELP = "; ".join(source.help for source in SOURCES.values())


@click.group()
def corpus() -> None:
    """Build a speech corpus with a manifest (for training and evaluation)."""


@corpus.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Corpus folder.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME[:ARG]",
    help=f"A source, repeatable (default: {' '.join(DEFAULT_SOURCES)}). Sources: {_SOURCE_HELP}.",
)
@click.option("--sample-rate", default=22050, show_default=True, type=click.IntRange(min=1000))
@click.option(
    "--val-fraction",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Share of clips (by clip, seeded) in the validation split.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the split and of the caps.")
@click.option("--max-clips", default=None, type=click.IntRange(min=1), help="Cap per source.")
@click.option(
    "--max-synthetic",
    default=DEFAULT_MAX_SYNTHETIC,
    show_default=True,
    type=click.IntRange(min=0),
    help="Cap on the clips of each synthetic source (espeak, flite, festival).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def build(
    out: Path,
    sources: tuple[str, ...],
    sample_rate: int,
    val_fraction: float,
    seed: int,
    max_clips: int | None,
    max_synthetic: int,
    progress: bool,
) -> None:
    """Convert clips to mono 16-bit wav under OUT/clips/ and write OUT/manifest.jsonl."""
    config = CorpusConfig(
        out=out,
        sources=sources or DEFAULT_SOURCES,
        sample_rate=sample_rate,
        val_fraction=val_fraction,
        seed=seed,
        max_clips=max_clips,
        max_synthetic=max_synthetic,
        progress=progress,
    )
    result = build_corpus(config)
    for clip_id, reason in result.dropped:
        click.echo(f"dropped {clip_id}: {reason}", err=True)
    click.echo(summary_table(result.entries))
    click.echo(
        f"{len(result.entries)} clips ({result.converted} converted, {result.reused} already there, "
        f"{len(result.dropped)} dropped) -> {result.manifest}"
    )


@corpus.command()
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Corpus folder or manifest.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Pack folder.")
@click.option("--hours", default=1.7, show_default=True, type=click.FloatRange(min=0.0, min_open=True))
@click.option("--seed", default=0, show_default=True, type=int)
def pack(data: Path, out: Path, hours: float, seed: int) -> None:
    """Pack HOURS of the train split (balanced over sources) + the val split as Ogg, to carry to a GPU."""
    from ganvoice.corpus.pack import pack_corpus

    entries = pack_corpus(data, out, hours, seed)
    click.echo(summary_table(entries))
    size = sum(p.stat().st_size for p in (out / "clips").iterdir()) / 1e6
    click.echo(f"{len(entries)} clips, {size:.1f} MB -> {out}")
