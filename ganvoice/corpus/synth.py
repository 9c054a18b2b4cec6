"""Synthetic voices for the corpus: espeak-ng, flite and festival speaking the project's sentence list.

Each engine lists its installed voices; every (sentence, voice) pair is one candidate clip whose
variant and speaking rate are chosen by a stable hash (so a clip id names exactly one rendering).
A missing tool raises ``SourceError`` naming the Debian package; the builder installs nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ganvoice.audio import load_audio
from ganvoice.corpus.errors import SourceError
from ganvoice.corpus.split import stable_choice
from ganvoice.errors import AudioError

#: Seconds one synthesizer call may take before it is treated as failed.
SYNTH_TIMEOUT_S = 60

ESPEAK_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2")
ESPEAK_WORDS_PER_MINUTE = (135, 150, 165, 180)
#: flite voices; "kal" is 8 kHz, so its 16 kHz build "kal16" stands in for it when present.
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
FLITE_FALLBACK = {"kal16": "kal"}
#: Duration stretch factors for flite and festival (1 = the voice's own speed).
STRETCHES = (0.9, 1.0, 1.12)
FESTIVAL_VOICE_DIRS = (Path("/usr/share/festival/voices"),)


def load_sentences() -> list[str]:
    """The sentence list shipped with ganvoice (``ganvoice/corpus/sentences.txt``), one per line."""
    text = resources.files("ganvoice.corpus").joinpath("sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class Take:
    """One rendering setup: a voice, an optional variant, and a speaking rate."""

    voice: str
    variant: str | None
    rate: float

    @property
    def speaker(self) -> str:
        return f"{self.voice}+{self.variant}" if self.variant else self.voice

    @property
    def label(self) -> str:
        """A path-safe name for the take, e.g. ``en-us+f3-r165``."""
        return f"{self.speaker}-r{self.rate:g}"


class Engine:
    """A speech synthesizer run as a subprocess that writes a wav file."""

    name = ""
    program = ""
    packages = ""

    def require(self) -> str:
        """The program's path; raises SourceError naming the Debian package when it is absent."""
        path = shutil.which(self.program)
        if path is None:
            raise SourceError(
                f"source '{self.name}' needs {self.program}, which is not on PATH; "
                f"install it with: sudo apt-get install -y {self.packages}"
            )
        return path

    def voices(self) -> list[str]:
        raise NotImplementedError

    def take(self, voice: str, index: int) -> Take:
        raise NotImplementedError

    def command(self, program: str, take: Take, text_file: Path, wav_file: Path) -> list[str]:
        raise NotImplementedError

    def render(self, take: Take, sentence: str, sample_rate: int) -> np.ndarray:
        """Speak ``sentence`` with ``take``; mono float32 ``[N]`` at ``sample_rate``."""
        program = self.require()
        with tempfile.TemporaryDirectory(prefix=f"ganvoice-{self.name}-") as folder:
            text_file, wav_file = Path(folder) / "text.txt", Path(folder) / "speech.wav"
            text_file.write_text(sentence + "\n", encoding="utf-8")
            cmd = self.command(program, take, text_file, wav_file)
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise AudioError(f"{self.name} took over {SYNTH_TIMEOUT_S} s on {sentence!r}") from exc
            if done.returncode != 0 or not wav_file.exists():
                detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
                raise AudioError(f"{self.name} failed on {sentence!r}: {detail}")
            return load_audio(wav_file, sample_rate)


class Espeak(Engine):
    name, program, packages = "espeak", "espeak-ng", "espeak-ng"

    def voices(self) -> list[str]:
        program = self.require()
        listing = subprocess.run([program, "--voices=en"], capture_output=True, text=True, check=False)
        installed = {line.split()[1] for line in listing.stdout.splitlines()[1:] if len(line.split()) > 1}
        return [voice for voice in ESPEAK_VOICES if voice in installed]

    def take(self, voice: str, index: int) -> Take:
        variant = stable_choice(ESPEAK_VARIANTS, "espeak-variant", voice, index)
        words_per_minute = stable_choice(ESPEAK_WORDS_PER_MINUTE, "espeak-rate", voice, index)
        return Take(voice, variant, float(words_per_minute))

    def command(self, program: str, take: Take, text_file: Path, wav_file: Path) -> list[str]:
        voice = f"{take.voice}+{take.variant}" if take.variant else take.voice
        return [program, "-v", voice, "-s", f"{take.rate:g}", "-w", str(wav_file), "-f", str(text_file)]


class Flite(Engine):
    name, program, packages = "flite", "flite", "flite"

    def voices(self) -> list[str]:
        program = self.require()
        listing = subprocess.run([program, "-lv"], capture_output=True, text=True, check=False)
        installed = set(listing.stdout.replace("Voices available:", " ").split())
        chosen = []
        for voice in FLITE_VOICES:
            if voice in installed:
                chosen.append(voice)
            elif FLITE_FALLBACK.get(voice) in installed:
                chosen.append(FLITE_FALLBACK[voice])
        return chosen

    def take(self, voice: str, index: int) -> Take:
        return Take(voice, None, stable_choice(STRETCHES, "flite-stretch", voice, index))

    def command(self, program: str, take: Take, text_file: Path, wav_file: Path) -> list[str]:
        stretch = f"duration_stretch={take.rate:g}"
        return [program, "-voice", take.voice, "--setf", stretch, "-f", str(text_file), "-o", str(wav_file)]


class Festival(Engine):
    name, program, packages = "festival", "text2wave", "festival festvox-kallpc16k"

    def voices(self) -> list[str]:
        self.require()
        found = sorted(
            {path.name for root in FESTIVAL_VOICE_DIRS if root.is_dir() for path in root.glob("*/*")}
        )
        if not found:
            raise SourceError(
                "source 'festival' found no festival voices; install one with: "
                "sudo apt-get install -y festvox-kallpc16k"
            )
        return found

    def take(self, voice: str, index: int) -> Take:
        return Take(voice, None, stable_choice(STRETCHES, "festival-stretch", voice, index))

    def command(self, program: str, take: Take, text_file: Path, wav_file: Path) -> list[str]:
        return [
            program,
            "-eval",
            f"(voice_{take.voice})",
            "-eval",
            f"(Parameter.set 'Duration_Stretch {take.rate:g})",
            str(text_file),
            "-o",
            str(wav_file),
        ]


ESPEAK = Espeak()
FLITE = Flite()
FESTIVAL = Festival()
