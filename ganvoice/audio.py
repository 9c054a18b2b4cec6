"""Audio files in and out (numpy only, no torch): load, save atomically, and read headers cheaply.

Every problem a user can fix (a missing, empty, corrupt or non-finite file, a folder that does not
exist) raises :class:`ganvoice.errors.AudioError` with one line that names the file.
Signals are float32 ``[N]`` (mono) in ``[-1, 1]``; :func:`save_audio` also takes ``[N, C]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ganvoice.errors import AudioError, first_line
from ganvoice.fileio import FILE_FOLDER_MISSING, atomic_write, umask_mode

# -- soxr resampling qualities: the one place they are chosen, each for its reason ------------------
#: Offline: loading a file (training data, ``--input``, eval). Nothing waits for the result, so the
#: best quality ("VHQ": very high quality, linear phase); its delay and bursts do not matter.
OFFLINE_RESAMPLE_QUALITY = "VHQ"
#: Live output: the engine's stream to a device at another rate. "LQ" (16-bit) streams with about
#: 1 ms of delay and no bursts; "HQ" would hold back about 20-40 ms and emit in bursts, which a
#: block-by-block audio callback cannot absorb (see ``Engine(resample_quality=...)``).
STREAM_RESAMPLE_QUALITY = "LQ"
#: Live input: the microphone to the model's rate before mel analysis. soxr's default ("HQ"): the
#: analysis already waits for its own lookahead, and input bursts only delay frames, never audio.
MIC_RESAMPLE_QUALITY = "HQ"
#: Audio extensions looked for in a folder (the corpus folder source, ``ganvoice eval``): anything
#: libsndfile decodes. :func:`save_audio` writes the subset in :data:`FORMAT_BY_SUFFIX`.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")
#: Default sample format of :func:`save_audio`.
DEFAULT_SUBTYPE = "PCM_16"
#: soundfile container format by file extension (the temp file's own name carries no usable extension).
FORMAT_BY_SUFFIX = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
#: Sample formats that hold integers (and so must be clipped to [-1, 1] before writing).
INTEGER_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32")

# soundfile signals an unreadable file with one of these (libsndfile errors are RuntimeErrors).
_READ_ERRORS = (RuntimeError, ValueError, TypeError, OSError, EOFError)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: length, rate and channels (nothing is decoded)."""

    seconds: float
    sample_rate: int
    channels: int
    frames: int


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such audio file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Length, sample rate and channel count of an audio file, from its header only."""
    path = Path(path)
    _check_readable(path)
    try:
        info = sf.info(str(path))
    except _READ_ERRORS as exc:
        raise AudioError(f"{path}: not a readable audio file ({first_line(exc)})") from exc
    return AudioInfo(
        seconds=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
    )


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 ``[N]`` from ``from_rate`` to ``to_rate`` with soxr; same array if equal rates."""
    if from_rate == to_rate:
        return np.ascontiguousarray(audio, dtype=np.float32)
    out = soxr.resample(
        np.ascontiguousarray(audio, dtype=np.float32), from_rate, to_rate, OFFLINE_RESAMPLE_QUALITY
    )
    return np.ascontiguousarray(out, dtype=np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read wav/flac/ogg (anything libsndfile reads) as mono float32 ``[N]`` at ``sample_rate``.

    Channels are averaged; the rate is converted with soxr (VHQ). Raises :class:`AudioError` for a
    missing, empty (0 samples), unreadable or non-finite file.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    path = Path(path)
    _check_readable(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except _READ_ERRORS as exc:
        raise AudioError(f"{path}: not a readable audio file ({first_line(exc)})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio in it (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    mono = data.mean(axis=1, dtype=np.float32)
    return resample(mono, int(rate), sample_rate)


def _as_frames(audio: np.ndarray) -> np.ndarray:
    """``[N]`` or ``[N, C]`` float32, checked finite and non-empty."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise AudioError(f"cannot save audio of shape {audio.shape}: need [N] or [N, channels], N > 0")
    if not np.isfinite(audio).all():
        raise AudioError("cannot save audio that contains NaN or infinite samples")
    return audio


def save_audio(
    path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str = DEFAULT_SUBTYPE
) -> Path:
    """Write ``audio`` (float32 ``[N]`` or ``[N, C]``) atomically: a temp file beside it, then rename.

    ``subtype`` is a soundfile sample format: ``"PCM_16"`` (default; samples are clipped to [-1, 1])
    or ``"FLOAT"``. The format follows the extension (.wav, .flac, .ogg). Returns the path written.
    """
    path = Path(path)
    frames = _as_frames(audio)
    fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unknown audio extension (use one of {', '.join(FORMAT_BY_SUFFIX)})")
    if subtype.upper() in INTEGER_SUBTYPES:
        frames = np.clip(frames, -1.0, 1.0)
    # umask_mode: mkstemp's files are 0o600, too private for a corpus.
    with atomic_write(
        path, mode=umask_mode(), missing_folder=FILE_FOLDER_MISSING, error=AudioError
    ) as handle:
        sf.write(handle, frames, int(sample_rate), subtype=subtype.upper(), format=fmt)
    return path
