"""Where clips come from: a folder, an LJSpeech-style set, Debian's speech packages, speech synthesizers.

Each source turns its argument into a list of :class:`Clip` (cheap: nothing is decoded yet); a clip's
``render(sample_rate)`` produces its mono float32 ``[N]`` audio. A source whose package or tool is
missing raises :class:`SourceError` with one line naming the package and the command that installs it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganvoice.audio import AUDIO_SUFFIXES, load_audio
from ganvoice.corpus import synth
from ganvoice.corpus.errors import SourceError

FILLETS_ROOT = Path("/usr/share/games/fillets-ng")
KTUBERLING_ROOT = Path("/usr/share/ktuberling/sounds")
KLETTRES_ROOT = Path("/usr/share/klettres")
#: klettres languages held out for evaluation: every clip from them gets split "test".
KLETTRES_HELD_OUT = ("en", "en_GB")
#: fillets clips whose name matches this are noises and effects, not speech.
FILLETS_NOISE_PATTERN = "*-x-*"
#: Transcript files looked for next to a folder source's clip (same stem).
TEXT_SUFFIXES = (".txt", ".lab")

_SAFE_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Clip:
    """One clip to be written: ``clips/<clip_id>.wav`` plus its manifest fields.

    ``render(sample_rate)`` returns mono float32 ``[N]`` at ``sample_rate`` (may raise AudioError).
    ``split`` is forced (``"test"`` for held-out clips) or None for the seeded train/val split.
    """

    clip_id: str
    source: str
    speaker: str | None
    text: str | None
    render: Callable[[int], np.ndarray]
    split: str | None = None


@dataclass(frozen=True)
class SourceDef:
    """A named source: how to list its clips from its optional argument, and whether it is synthetic."""

    name: str
    synthetic: bool
    clips: Callable[[str | None, list[str]], list[Clip]]
    help: str


def missing_package(source: str, package: str, what: str) -> SourceError:
    return SourceError(
        f"source '{source}' needs the Debian package {package} ({what}); "
        f"install it with: sudo apt-get install -y {package}"
    )


def _file_clip(path: Path, clip_id: str, source: str, speaker: str | None, text: str | None, split=None):
    return Clip(clip_id, source, speaker, text, functools.partial(load_audio, path), split)


def _label(text: str) -> str:
    return _SAFE_LABEL.sub("_", text).strip("_") or "clips"


# --- folder and LJSpeech ---------------------------------------------------------------------------


def folder_clips(arg: str | None, sentences: list[str]) -> list[Clip]:
    """Every audio file under ``arg`` (recursively); text from a same-stem .txt/.lab file beside it."""
    root = _existing_folder("folder", arg)
    source = f"folder-{_label(root.resolve().name)}"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise SourceError(f"source 'folder': no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
    clips = []
    for path in files:
        rel = path.relative_to(root).with_suffix("")
        clip_id = f"{source}/{'/'.join(_label(part) for part in rel.parts)}"
        clips.append(_file_clip(path, clip_id, source, None, _sidecar_text(path)))
    return clips


def _existing_folder(source: str, arg: str | None) -> Path:
    if not arg:
        raise SourceError(f"source '{source}' needs a folder: --source {source}:PATH")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise SourceError(f"source '{source}': folder {root} does not exist")
    return root


def _sidecar_text(path: Path) -> str | None:
    for suffix in TEXT_SUFFIXES:
        side = path.with_suffix(suffix)
        if side.is_file():
            text = side.read_text(encoding="utf-8", errors="replace").strip()
            return " ".join(text.split()) or None
    return None


def ljspeech_clips(arg: str | None, sentences: list[str]) -> list[Clip]:
    """LJSpeech layout: ``metadata.csv`` lines ``id|text[|normalized text]``, audio in ``wavs/<id>.wav``."""
    root = _existing_folder("ljspeech", arg)
    metadata = root / "metadata.csv"
    if not metadata.is_file():
        raise SourceError(f"source 'ljspeech': {metadata} not found (need metadata.csv and wavs/)")
    source = f"ljspeech-{_label(root.resolve().name)}"
    clips = []
    for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.rstrip("\r").split("|")
        if len(fields) < 2 or not fields[0].strip():
            continue
        clip_name = fields[0].strip()
        text = " ".join(fields[-1].split()) or None
        path = root / "wavs" / f"{clip_name}.wav"
        clips.append(_file_clip(path, f"{source}/{_label(clip_name)}", source, None, text))
    if not clips:
        raise SourceError(f"source 'ljspeech': {metadata} lists no clips")
    return clips


# --- Debian: fillets-ng (Czech, Dutch) -------------------------------------------------------------

_DIALOG = re.compile(
    r'dialogId\(\s*"([^"]+)"\s*,\s*"[^"]*"\s*,\s*"(?:[^"\\]|\\.)*"\s*\)\s*'
    r'dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\)',
    re.S,
)


def fillets_texts(root: Path, lang: str) -> dict[str, str]:
    """Clip name -> spoken text, from ``script/*/dialogs_<lang>.lua`` (empty without the base package)."""
    texts = {}
    for script in sorted(root.glob(f"script/*/dialogs_{lang}.lua")):
        content = script.read_text(encoding="utf-8", errors="replace")
        for clip_name, text in _DIALOG.findall(content):
            text = text.replace('\\"', '"').replace("\\n", " ").replace("\\\\", "\\")
            texts[clip_name] = " ".join(text.split())
    return texts


def fillets_speaker(stem: str) -> str | None:
    """The speaker tag in a fillets clip name: ``let-m-divna`` -> ``m``; ``agenti-m`` -> ``m``; else None."""
    parts = stem.split("-")
    if len(parts) >= 3 and parts[1].isalpha():
        return parts[1]
    if len(parts) == 2 and parts[1].isalpha() and len(parts[1]) <= 3:
        return parts[1]
    return None


def _fillets(lang: str, arg: str | None, sentences: list[str]) -> list[Clip]:
    source = f"fillets-{lang}"
    root = Path(arg) if arg else FILLETS_ROOT
    files = sorted(root.glob(f"sound/*/{lang}/*.ogg"))
    if not files:
        raise missing_package(source, f"fillets-ng-data-{lang}", f"no clips under {root}/sound/*/{lang}")
    texts = fillets_texts(root, lang)
    clips = []
    for path in files:
        if fnmatch.fnmatch(path.stem, FILLETS_NOISE_PATTERN):
            continue
        tag = fillets_speaker(path.stem)
        speaker = f"{source}/{tag}" if tag else None
        clip_id = f"{source}/{path.parent.parent.name}/{path.stem}"
        clips.append(_file_clip(path, clip_id, source, speaker, texts.get(path.stem)))
    return clips


# --- Debian: ktuberling (words) and klettres (letters and syllables) --------------------------------

_SOUND_TAG = re.compile(r'<sound\s+name="([^"]*)"\s+file="([^"]*)"')


def _sound_names(files: list[Path]) -> dict[str, str]:
    """``file`` attribute -> ``name`` attribute of every ``<sound name=... file=...>`` in ``files``."""
    names = {}
    for path in files:
        for name, file in _SOUND_TAG.findall(path.read_text(encoding="utf-8", errors="replace")):
            names[file] = name
    return names


def ktuberling_clips(arg: str | None, sentences: list[str]) -> list[Clip]:
    """Single words read in ~25 languages, one reader per language (speaker = the language).

    No text: the theme files name each sound by an English key, not by the word that is spoken.
    """
    root = Path(arg) if arg else KTUBERLING_ROOT
    files = sorted(root.glob("*/*.ogg"))
    if not files:
        raise missing_package("ktuberling", "ktuberling-data", f"no clips under {root}/*/")
    clips = []
    for path in files:
        lang = path.parent.name
        clip_id = f"ktuberling/{lang}/{path.stem}"
        clips.append(_file_clip(path, clip_id, "ktuberling", f"ktuberling/{lang}", None))
    return clips


def klettres_clips(arg: str | None, sentences: list[str]) -> list[Clip]:
    """Letters and syllables in 18 languages; every clip of ``en`` and ``en_GB`` is split "test"."""
    root = Path(arg) if arg else KLETTRES_ROOT
    files = sorted(root.glob("*/*/*.ogg"))
    if not files:
        raise missing_package("klettres", "klettres-data", f"no clips under {root}/*/*/")
    names = _sound_names(sorted(root.glob("*/sounds.xml")))
    clips = []
    for path in files:
        lang = path.parent.parent.name
        rel = path.relative_to(root).as_posix()
        clip_id = f"klettres/{lang}/{path.parent.name}/{path.stem}"
        split = "test" if lang in KLETTRES_HELD_OUT else None
        clips.append(_file_clip(path, clip_id, "klettres", f"klettres/{lang}", names.get(rel), split))
    return clips


# --- synthetic voices -------------------------------------------------------------------------------


def _synthetic(engine: synth.Engine, arg: str | None, sentences: list[str]) -> list[Clip]:
    """Every (sentence, installed voice) pair; ``arg`` = comma-separated voices to keep."""
    voices = engine.voices()
    if not voices:
        raise SourceError(f"source '{engine.name}': {engine.program} has none of its expected voices")
    if arg:
        wanted = set(arg.split(","))
        voices = [voice for voice in voices if voice in wanted]
        if not voices:
            raise SourceError(f"source '{engine.name}': none of the voices {sorted(wanted)} is installed")
    clips = []
    for index, sentence in enumerate(sentences):
        for voice in voices:
            take = engine.take(voice, index)
            clip_id = f"{engine.name}/{take.label}/s{index:04d}"
            render = functools.partial(engine.render, take, sentence)
            clips.append(Clip(clip_id, engine.name, f"{engine.name}/{take.speaker}", sentence, render))
    return clips


SOURCES: dict[str, SourceDef] = {
    s.name: s
    for s in (
        SourceDef("folder", False, folder_clips, "folder:PATH (audio files under PATH)"),
        SourceDef("ljspeech", False, ljspeech_clips, "ljspeech:PATH (metadata.csv + wavs/)"),
        SourceDef("fillets-cs", False, functools.partial(_fillets, "cs"), "fillets-cs (Czech dialogue)"),
        SourceDef("fillets-nl", False, functools.partial(_fillets, "nl"), "fillets-nl (Dutch dialogue)"),
        SourceDef("ktuberling", False, ktuberling_clips, "ktuberling (words, ~25 languages)"),
        SourceDef("klettres", False, klettres_clips, "klettres (letters; en, en_GB -> test)"),
        SourceDef("espeak", True, functools.partial(_synthetic, synth.ESPEAK), "espeak[:VOICE,...]"),
        SourceDef("flite", True, functools.partial(_synthetic, synth.FLITE), "flite[:VOICE,...]"),
        SourceDef("festival", True, functools.partial(_synthetic, synth.FESTIVAL), "festival[:VOICE,...]"),
    )
}

DEFAULT_SOURCES = ("fillets-cs", "fillets-nl", "ktuberling", "klettres", "espeak")


def parse_source(text: str) -> tuple[SourceDef, str | None]:
    """``NAME`` or ``NAME:ARG`` -> (source, arg); an unknown name raises :class:`SourceError`."""
    name, _, arg = text.partition(":")
    if name not in SOURCES:
        raise SourceError(f"unknown corpus source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name], (arg or None)


def source_clips(text: str, sentences: list[str]) -> tuple[SourceDef, list[Clip]]:
    """Every candidate clip of the source ``NAME[:ARG]`` (before any cap), in a stable order."""
    source, arg = parse_source(text)
    return source, source.clips(arg, sentences)
