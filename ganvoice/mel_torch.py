"""The torch twin of :mod:`ganvoice.mel` (same :class:`~ganvoice.mel.MelSpec`, same rule).

``precise=True`` (default) computes the STFT in float64, which keeps the twins within ~1e-6 of each
other; ``precise=False`` stays in float32 (faster, used for the training losses, ~1e-3 near the floor).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganvoice.mel import MAGNITUDE_EPS, MelSpec, analysis_window, mel_filterbank


class MelSpectrogram(torch.nn.Module):
    """``audio [B, N]`` or ``[N]`` -> log-mel ``[B, n_mels, N // hop]`` (float32)."""

    def __init__(self, spec: MelSpec | None = None, precise: bool = True):
        super().__init__()
        self.spec = spec or MelSpec()
        self.precise = precise
        dtype = torch.float64 if precise else torch.float32
        self.register_buffer("filterbank", torch.tensor(mel_filterbank(self.spec), dtype=dtype), False)
        self.register_buffer("window", torch.tensor(analysis_window(self.spec), dtype=dtype), False)

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio [B, N]`` -> the complex STFT ``[B, n_fft / 2 + 1, N // hop]`` of steps 1-3 of the rule
        (frame ``i`` is mel frame ``i``; complex128 when ``precise``, else complex64)."""
        spec = self.spec
        x = audio.to(self.window.dtype)
        pad_mode = spec.pad_mode if spec.pad_mode == "reflect" else "constant"
        x = F.pad(x.unsqueeze(1), (spec.padding, spec.padding), mode=pad_mode).squeeze(1)
        stft = torch.stft(
            x,
            spec.n_fft,
            hop_length=spec.hop_length,
            win_length=spec.n_fft,
            window=self.window,
            center=False,
            return_complex=True,
        )
        return stft[..., : spec.num_frames(audio.shape[-1])]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        squeeze = audio.dim() == 1
        stft = self.stft(audio.reshape(1, -1) if squeeze else audio)
        magnitude = torch.sqrt(stft.real**2 + stft.imag**2 + MAGNITUDE_EPS)
        mel = torch.matmul(self.filterbank, magnitude).clamp_min(spec.clamp_min)
        logmel = torch.log(mel) if spec.log_base == "e" else torch.log10(mel)
        logmel = logmel.to(torch.float32)
        return logmel[0] if squeeze else logmel
