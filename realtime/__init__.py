"""``ganvoice.realtime``: the torch-free runtime (ONNX Runtime + sounddevice).

It imports numpy-side ganvoice modules only (``ganvoice.mel``, ``ganvoice.modelmeta``,
``ganvoice.errors``, ``ganvoice.audio``, ``ganvoice.onnxgraph``, ``ganvoice.fileio``,
``ganvoice.assets``); sounddevice is imported when a device is opened.
"""

from ganvoice.realtime.blockstep import BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.player import Player, PlayerConfig
from ganvoice.realtime.sources import FileSource, MelSource, MicSource, NoiseSource, PushSource, Source

__all__ = [
    "BlockStep",
    "Engine",
    "FileSource",
    "MelSource",
    "MicSource",
    "NoiseSource",
    "Player",
    "PlayerConfig",
    "PushSource",
    "Source",
]
