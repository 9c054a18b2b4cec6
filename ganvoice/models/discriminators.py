"""Discriminators (training only): MPD, MSD, MRD and the seed's MLP, one registry, any combination.

Every discriminator maps audio ``[B, N]`` to ``(logits, features)``: ``logits`` a list of tensors (one per
sub-discriminator, any shape, raw scores -- no sigmoid), ``features`` a list (one per sub-discriminator) of
lists of intermediate activations, for feature matching. :class:`DiscriminatorSet` runs several and
concatenates their lists.

Sizes are configurable; the defaults are the published ones (HiFi-GAN's MPD/MSD, UnivNet/Vocos's MRD),
recipes shrink them for a CPU budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from ganvoice.errors import GanvoiceError
from ganvoice.models.registry import Registry

LRELU_SLOPE = 0.1
Output = tuple[list[Tensor], list[list[Tensor]]]


def _weight_norm(module: nn.Module) -> nn.Module:
    return parametrizations.weight_norm(module)


def _conv_stack(x: Tensor, convs: nn.ModuleList, post: nn.Module) -> tuple[Tensor, list[Tensor]]:
    """``convs`` (each then a leaky ReLU), then ``post`` -> ``(flattened logits, every layer's output)``."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


# --------------------------------------------------------------------------------------------- MPD
@dataclass
class MPDConfig:
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    channels: tuple[int, ...] = (32, 128, 512, 1024)
    kernel_size: int = 5
    stride: int = 3


class PeriodDiscriminator(nn.Module):
    """Audio ``[B, N]`` -> reshaped ``[B, 1, N / period, period]`` -> 2-D convs over time, per phase."""

    def __init__(self, period: int, channels: tuple[int, ...], kernel_size: int, stride: int):
        super().__init__()
        self.period = period
        pad = (kernel_size - 1) // 2
        chans = (1, *channels)
        self.convs = nn.ModuleList(
            _weight_norm(nn.Conv2d(cin, cout, (kernel_size, 1), (stride, 1), (pad, 0)))
            for cin, cout in zip(chans[:-1], chans[1:])
        )
        self.convs.append(_weight_norm(nn.Conv2d(chans[-1], chans[-1], (kernel_size, 1), 1, (pad, 0))))
        self.post = _weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, (1, 0)))

    def forward(self, audio: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = audio.unsqueeze(1)
        rest = x.shape[-1] % self.period
        if rest:
            x = F.pad(x, (0, self.period - rest), mode="reflect")
        x = x.reshape(x.shape[0], 1, -1, self.period)
        return _conv_stack(x, self.convs, self.post)


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, config: MPDConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, tuple(config.channels), config.kernel_size, config.stride)
            for p in config.periods
        )

    def forward(self, audio: Tensor) -> Output:
        return _gather(d(audio) for d in self.discriminators)


# --------------------------------------------------------------------------------------------- MSD
@dataclass
class MSDConfig:
    scales: int = 3
    channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)
    groups: tuple[int, ...] = (1, 4, 16, 16, 16, 16, 1)


class ScaleDiscriminator(nn.Module):
    """Audio ``[B, N]`` -> 1-D grouped convs (HiFi-GAN's DiscriminatorS layout)."""

    KERNELS = (15, 41, 41, 41, 41, 41, 5)
    STRIDES = (1, 2, 2, 4, 4, 1, 1)

    def __init__(self, channels: tuple[int, ...], groups: tuple[int, ...], spectral_norm: bool = False):
        super().__init__()
        if not (len(channels) == len(groups) == len(self.KERNELS)):
            raise GanvoiceError(f"msd needs {len(self.KERNELS)} channels and groups")
        norm = nn.utils.spectral_norm if spectral_norm else _weight_norm
        chans = (1, *channels)
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(cin, cout, k, s, groups=g, padding=(k - 1) // 2))
            for cin, cout, k, s, g in zip(chans[:-1], chans[1:], self.KERNELS, self.STRIDES, groups)
        )
        self.post = norm(nn.Conv1d(chans[-1], 1, 3, 1, padding=1))

    def forward(self, audio: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = audio.unsqueeze(1)
        return _conv_stack(x, self.convs, self.post)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` discriminators on audio average-pooled by 1, 2, 4, ... (the first spectral-normed)."""

    def __init__(self, config: MSDConfig):
        super().__init__()
        channels, groups = tuple(config.channels), tuple(config.groups)
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, groups, spectral_norm=(i == 0)) for i in range(config.scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, audio: Tensor) -> Output:
        outputs = []
        for i, disc in enumerate(self.discriminators):
            if i:
                audio = self.pool(audio.unsqueeze(1)).squeeze(1)
            outputs.append(disc(audio))
        return _gather(outputs)


# --------------------------------------------------------------------------------------------- MRD
@dataclass
class MRDConfig:
    resolutions: tuple[tuple[int, int, int], ...] = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))
    channels: int = 32
    layers: int = 4


class ResolutionDiscriminator(nn.Module):
    """Audio ``[B, N]`` -> STFT magnitude ``[B, 1, T, F]`` -> 2-D convs (UnivNet's layout)."""

    def __init__(self, n_fft: int, hop: int, win: int, channels: int, layers: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(win), persistent=False)
        convs = [_weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4)))]
        convs += [
            _weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), (1, 4))) for _ in range(layers - 1)
        ]
        convs.append(_weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.post = _weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def spectrogram(self, audio: Tensor) -> Tensor:
        """``[B, N]`` -> magnitude ``[B, 1, T, F]`` (float32 even under autocast)."""
        stft = torch.stft(
            audio.float(),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return stft.abs().transpose(1, 2).unsqueeze(1)

    def forward(self, audio: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.spectrogram(audio)
        return _conv_stack(x, self.convs, self.post)


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, config: MRDConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ResolutionDiscriminator(*res, config.channels, config.layers) for res in config.resolutions
        )

    def forward(self, audio: Tensor) -> Output:
        return _gather(d(audio) for d in self.discriminators)


# --------------------------------------------------------------------------------------------- MLP
@dataclass
class MLPConfig:
    clip_length: int = 8192
    hidden: int = 512


class MLPDiscriminator(nn.Module):
    """The seed's discriminator: clip ``[B, clip_length]`` -> Linear -> LeakyReLU -> Linear -> score.

    The seed ends in a Sigmoid; here the score stays a logit and the BCE loss applies the sigmoid
    (``binary_cross_entropy_with_logits``: the same loss, numerically stable). Audio longer than a clip
    ``[B, k * clip_length]`` is cut into ``k`` clips.
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.clip_length = config.clip_length
        self.hidden = nn.Linear(config.clip_length, config.hidden)
        self.out = nn.Linear(config.hidden, 1)

    def forward(self, audio: Tensor) -> Output:
        if audio.shape[-1] % self.clip_length:
            raise GanvoiceError(f"mlp discriminator needs audio in clips of {self.clip_length} samples")
        h = F.leaky_relu(self.hidden(audio.reshape(-1, self.clip_length)), 0.2)
        return [self.out(h)], [[h]]

    def probability(self, audio: Tensor) -> Tensor:
        """The seed's output: ``sigmoid(score)`` ``[B * k, 1]``."""
        return torch.sigmoid(self(audio)[0][0])


# ---------------------------------------------------------------------------------------- registry
def _prepare_config(name: str, values: dict, config_class: type) -> dict:
    """A recipe's lists as tuples (the config fields are tuples)."""
    return {key: _tuples(value) for key, value in values.items()}


#: Every discriminator, registered like the generators (:class:`~ganvoice.models.registry.Registry`).
DISCRIMINATORS = Registry("discriminator", prepare=_prepare_config)
DISCRIMINATORS.register("mpd", MPDConfig)(MultiPeriodDiscriminator)
DISCRIMINATORS.register("msd", MSDConfig)(MultiScaleDiscriminator)
DISCRIMINATORS.register("mrd", MRDConfig)(MultiResolutionDiscriminator)
DISCRIMINATORS.register("mlp", MLPConfig)(MLPDiscriminator)


def discriminator_names() -> list[str]:
    return DISCRIMINATORS.names()


def make_discriminator_config(name: str, overrides: dict | None = None):
    """Typed config for discriminator ``name``; unknown names or keys are one-line errors."""
    return DISCRIMINATORS.make_config(name, overrides)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class DiscriminatorSet(nn.ModuleDict):
    """Several discriminators by name: ``forward(audio [B, N]) -> (logits, features)``, lists concatenated
    in name order."""

    def __init__(self, configs: dict[str, dict]):
        if not configs:
            raise GanvoiceError("at least one discriminator is needed")
        modules = {}
        for name in sorted(configs):
            modules[name] = DISCRIMINATORS.build(name, configs[name])
        super().__init__(modules)

    def forward(self, audio: Tensor) -> Output:
        return _gather(self[name](audio) for name in self)


def build_discriminators(configs: dict[str, dict]) -> DiscriminatorSet:
    """``{"mpd": {...overrides}, "mrd": {}}`` -> :class:`DiscriminatorSet`."""
    return DiscriminatorSet(configs)


def _gather(outputs) -> Output:
    logits: list[Tensor] = []
    features: list[list[Tensor]] = []
    for out_logits, out_features in outputs:
        if isinstance(out_logits, Tensor):  # a single sub-discriminator
            logits.append(out_logits)
            features.append(out_features)
        else:
            logits.extend(out_logits)
            features.extend(out_features)
    return logits, features
