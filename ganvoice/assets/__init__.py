"""The bundled files and their names, in one place: the default models, the demo clip, the checkpoint.

``ganvoice/assets`` ships inside the package (numpy side; the runtime may import this).
"""

from __future__ import annotations

from pathlib import Path

#: The default mel vocoder that ``ganvoice-play`` and the benchmarks use without ``--model``.
DEFAULT_MODEL = "default.onnx"
#: The unconditional model that ``ganvoice-play --noise`` uses.
NOISE_MODEL = "noise.onnx"
#: The demo sentence (22050 Hz speech).
DEMO_AUDIO = "demo.wav"
#: The checkpoint the default model was exported from (fine-tuning starts here).
DEFAULT_CHECKPOINT = "default-finetune.pt"


def assets_dir() -> Path:
    """The bundled assets folder (``ganvoice/assets``), wherever ganvoice is installed."""
    return Path(__file__).resolve().parent


def asset_path(name: str) -> Path:
    """The path of the bundled file ``name`` (it may be missing in a checkout without releases)."""
    return assets_dir() / name


def bundled_model_path(noise: bool = False) -> Path:
    """The bundled default model (``noise``: the noise model); check ``is_file()`` before use."""
    return asset_path(NOISE_MODEL if noise else DEFAULT_MODEL)


def bundled_model(noise: bool = False) -> Path:
    """The bundled default model's path, or a one-line :class:`GanvoiceError` saying how to get a model."""
    from ganvoice.errors import GanvoiceError

    path = bundled_model_path(noise)
    if not path.is_file():
        raise GanvoiceError(
            f"no bundled model yet ({path} is missing: it ships with a trained release); "
            "pass --model FILE.onnx (e.g. from 'ganvoice export --variant fast --random -o g.onnx')"
        )
    return path
