"""``seed-mlp``: the toy GAN the project grew from, kept as a recipe.

Generator: latent noise frame -> Linear -> ReLU -> Linear -> Tanh -> one clip of ``clip_length`` samples.
Each latent frame makes one clip, so it streams (and exports) like the others, with no state and no delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ganvoice.models.base import Generator, GeneratorConfig, register_generator


@dataclass
class SeedMlpConfig(GeneratorConfig):
    conditioning: str = "noise"
    latent_channels: int = 100
    hidden: int = 512
    clip_length: int = 8192


class FrameMLP(nn.Module):
    """``[B, C, T]`` -> ``[B, 1, T * clip_length]``: each frame becomes one clip."""

    def __init__(self, in_channels: int, hidden: int, clip_length: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, clip_length), nn.Tanh()
        )

    def forward(self, x: Tensor) -> Tensor:
        clips = self.net(x.transpose(1, 2))  # [B, T, clip]
        return clips.reshape(x.shape[0], 1, -1)


class SeedMlpGenerator(Generator):
    def __init__(self, config: SeedMlpConfig):
        super().__init__(config.in_channels, config.clip_length, config.conditioning, config.pad_value)
        self.config = config
        self.mlp = FrameMLP(config.in_channels, config.hidden, config.clip_length)
        self.layers = [self.mlp]


register_generator("seed-mlp", SeedMlpConfig, conditioning="noise", latent_channels=100)(SeedMlpGenerator)
