"""``ganvoice export``: a checkpoint (ours or an official HiFi-GAN one) -> a streaming ONNX model."""

from __future__ import annotations

import os
from pathlib import Path

import click
import torch

from ganvoice.errors import GanvoiceError
from ganvoice.export.checkpoint import generator_from_checkpoint
from ganvoice.export.onnx_export import ExportOptions, export_generator, file_sha256
from ganvoice.export.parity import example_input, torch_vs_ort
from ganvoice.models.base import build_generator, variant_names
from ganvoice.models.fast import EXPORT_PRESETS
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.train.config import deep_merge, parse_assignment

PARITY_CHUNKS = [1, 2, 5, 16, 37]
#: Largest parity errors an export may show, per weight type: (torch vs ORT, ORT streaming vs offline).
#: fp16/int8 weights move the output away from torch's; every weight type streams exactly.
PARITY_LIMITS = {"fp32": (1e-3, 1e-3), "fp16": (5e-2, 1e-3), "int8": (5e-2, 1e-3)}


@click.command()
@click.argument("checkpoint", required=False)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--variant", type=str, help="With --random: the registered variant to export.")
@click.option("--random", "random_weights", is_flag=True, help="Random weights (speed work, tests).")
@click.option("--config", "official_config", type=click.Path(), help="config.json of an official HiFi-GAN.")
@click.option(
    "--weights",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default="fp32",
    show_default=True,
    help="fp16: weights stored as fp16, computed in fp32 (half the file). int8: MatMul weights as 8-bit "
    "blocks (ONNX Runtime's MatMulNBits; a third of the file, ~35 % faster one-frame calls), streaming "
    "exactness kept; lossy.",
)
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--no-simplify", is_flag=True, help="Skip the onnxslim pass.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--preset",
    type=click.Choice(sorted(EXPORT_PRESETS)),
    help="Named consistency/NNLS choice of a phase-only fast checkpoint (quality = the bundled default); "
    "--set values go on top.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Generator option without weights, e.g. consistency_iterations=3 (value in TOML).",
)
def export(
    checkpoint,
    output,
    variant,
    random_weights,
    official_config,
    weights,
    opset,
    no_simplify,
    seed,
    preset,
    assignments,
):
    """Export CHECKPOINT (or --variant NAME --random) to one streaming ONNX graph."""
    overrides = {**EXPORT_PRESETS.get(preset, {}), **generator_overrides(assignments)}
    if random_weights:
        if not variant:
            raise GanvoiceError(f"--random needs --variant (one of: {', '.join(variant_names())})")
        torch.manual_seed(seed)
        generator, step, digest = build_generator(variant, overrides), 0, ""
    else:
        if not checkpoint:
            raise GanvoiceError("give a CHECKPOINT, or --variant NAME --random")
        generator, step = generator_from_checkpoint(checkpoint, official_config, overrides)
        digest = file_sha256(checkpoint)
    options = ExportOptions(opset=opset, simplify=not no_simplify, weights=weights)
    # the new graph is written beside OUTPUT and replaces it only once its parity check has passed
    staging = Path(output).with_name(f".{Path(output).name}.export.tmp")
    try:
        metadata = export_generator(
            generator, staging, training_step=step, checkpoint_sha256=digest, options=options
        )
        offline_error = torch_vs_ort(generator, staging)
        graph = OnnxGenerator(staging)
        x = example_input(generator, 40 if generator.hop_length < 4096 else 4)
        stream_error = float(abs(graph.chunked(x, PARITY_CHUNKS) - graph.offline(x)).max())
        failed = [
            f"{name} {error:.2e} > {limit:.0e}"
            for name, error, limit in zip(
                ("torch-vs-ORT", "ORT stream-vs-offline"),
                (offline_error, stream_error),
                PARITY_LIMITS[weights],
            )
            if not error <= limit  # NaN fails too
        ]
        if failed:
            raise GanvoiceError(f"parity check failed ({', '.join(failed)}); {output} was not written")
        os.replace(staging, output)
    finally:
        staging.unlink(missing_ok=True)
    size_mb = Path(output).stat().st_size / 1e6
    click.echo(
        f"wrote {output} ({size_mb:.2f} MB, {metadata.variant}, {weights}): "
        f"delay {metadata.delay_samples} samples ({metadata.delay_ms:.1f} ms); "
        f"parity torch-vs-ORT {offline_error:.2e}, "
        f"ORT stream-vs-offline {stream_error:.2e}"
    )


def generator_overrides(assignments: tuple[str, ...]) -> dict:
    """``("consistency_iterations=3", ...)`` -> ``{"consistency_iterations": 3}`` (values parsed as TOML)."""
    overrides: dict = {}
    for text in assignments:
        overrides = deep_merge(overrides, parse_assignment(text))
    return overrides
