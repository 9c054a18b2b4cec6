"""Seeded mutations of a small exported model's metadata, each valid or invalid *by construction*.

Every mutation below states whether the file it makes is usable (the mutation decides, never the
validator under test). Each case is checked against a real ONNX Runtime session of the tiny model
(the strict parse, the graph check and the one-frame probe); every tenth case is also written to a
file and opened by :class:`Engine` (then played, if accepted) and by ``ganvoice info``. Outcomes:
accepted, refused with one :class:`ModelFormatError` line, anything else (a "traceback"), or a hang
(the case outlives ``HANG_S``). The test wants 0 tracebacks, 0 hangs, 0 invalid accepted and 0 valid
refused.
"""

from __future__ import annotations

import copy
import json
import signal
from collections import Counter
from collections.abc import Callable

import numpy as np
import onnx
import pytest

from ganvoice.errors import ModelFormatError
from ganvoice.modelmeta import METADATA_KEY
from ganvoice.onnxgraph import checked_metadata, open_session

CASES = 300
FULL_EVERY = 10  # every tenth case also goes through a file, Engine and `ganvoice info`
VALID_SHARE = 0.4  # cases drawn among valid mutations only
HANG_S = 20  # a case that runs this long is a hang (a normal one takes milliseconds)
VALID_RATES = (16000, 24000, 44100, 48000)  # fmax 8000 <= rate / 2 for every one of them

Mutation = tuple[str, bool, Callable[[dict, np.random.Generator], object]]


def _set(path: str, value) -> Callable[[dict, np.random.Generator], dict]:
    """Set ``a.b`` to ``value`` (a callable of the rng for a random one)."""

    def edit(meta: dict, rng: np.random.Generator) -> dict:
        *parents, key = path.split(".")
        target = meta
        for parent in parents:
            target = target[parent]
        target[key] = value(rng) if callable(value) else value
        return meta

    return edit


def _drop(path: str) -> Callable[[dict, np.random.Generator], dict]:
    def edit(meta: dict, rng: np.random.Generator) -> dict:
        *parents, key = path.split(".")
        target = meta
        for parent in parents:
            target = target[parent]
        del target[key]
        return meta

    return edit


def _both(*edits) -> Callable[[dict, np.random.Generator], dict]:
    def edit(meta: dict, rng: np.random.Generator) -> dict:
        for one in edits:
            meta = one(meta, rng)
        return meta

    return edit


def _rate(rng: np.random.Generator) -> int:
    return int(rng.choice(VALID_RATES))


def _consistent_rate(meta: dict, rng: np.random.Generator) -> dict:
    meta["sample_rate"] = meta["mel"]["sample_rate"] = _rate(rng)
    return meta


def _state_edit(
    change: Callable[[list, np.random.Generator], None],
) -> Callable[[dict, np.random.Generator], dict]:
    def edit(meta: dict, rng: np.random.Generator) -> dict:
        change(meta["state"], rng)
        return meta

    return edit


def _pick(state: list, rng: np.random.Generator) -> dict:
    return state[int(rng.integers(len(state)))]


def _swap(state: list, rng: np.random.Generator) -> None:
    state[0], state[-1] = state[-1], state[0]


def _grow_last(state: list, rng: np.random.Generator) -> None:
    entry = _pick(state, rng)
    entry["shape"][-1] += int(rng.integers(1, 5))


def _text(value: str) -> Callable[[dict, np.random.Generator], str]:
    return lambda meta, rng: value


# (group, valid, edit): one mutation per group in a case; an edit returns the new dict, or a str that
# replaces the whole JSON text. Valid edits of different groups stay valid together (the rates keep
# fmax 8000 <= rate / 2; valid delays are <= 10 s at 8 kHz; invalid ones are > 10 s at 48 kHz).
MUTATIONS: dict[str, list[tuple[bool, Callable]]] = {
    "text": [
        (False, _text("")),
        (False, _text("{")),
        (False, _text("[]")),
        (False, _text("null")),
        (False, _text('"fast"')),
        (False, _text("NaN")),
        (False, _text("[" * 100_000 + "]" * 100_000)),
    ],
    "format": [
        (False, _drop("format")),
        (False, _set("format", "1")),
        (False, _set("format", 1.0)),
        (False, _set("format", True)),
        (False, _set("format", 0)),
        (False, _set("format", 2)),
        (False, _set("format", -1)),
    ],
    "variant": [
        (True, _set("variant", "hifigan-v1")),
        (True, _set("variant", "a model from somewhere else")),
        (False, _set("variant", "")),
        (False, _set("variant", 3)),
        (False, _set("variant", None)),
        (False, _drop("variant")),
    ],
    "rate": [
        (True, _consistent_rate),
        (False, _set("sample_rate", 44100)),
        (False, _set("sample_rate", "abc")),
        (False, _set("sample_rate", 2.5)),
        (False, _set("sample_rate", 22050.0)),
        (False, _set("sample_rate", True)),
        (False, _set("sample_rate", None)),
        (False, _drop("sample_rate")),
        (False, _set("mel.sample_rate", 44100)),
        (False, _both(_set("sample_rate", 7999), _set("mel.sample_rate", 7999))),
        (False, _both(_set("sample_rate", 192001), _set("mel.sample_rate", 192001))),
        (False, _both(_set("sample_rate", 0), _set("mel.sample_rate", 0))),
        (False, _both(_set("sample_rate", -22050), _set("mel.sample_rate", -22050))),
    ],
    "hop": [
        (False, _set("hop_length", 512)),
        (False, _set("hop_length", 0)),
        (False, _set("hop_length", 256.0)),
        (False, _set("hop_length", "256")),
        (False, _set("mel.hop_length", 2**63)),
        (False, _both(_set("hop_length", 2**63), _set("mel.hop_length", 2**63))),
        (False, _both(_set("hop_length", 128), _set("mel.hop_length", 128))),  # the graph makes 256
        (False, _drop("hop_length")),
    ],
    "conditioning": [
        (False, _set("conditioning", "noise")),
        (False, _set("conditioning", "speech")),
        (False, _set("conditioning", None)),
        (False, _drop("conditioning")),
    ],
    "channels": [
        (False, _set("channels", 81)),
        (False, _set("channels", 80.0)),
        (False, _set("channels", 0)),
        (False, _set("channels", "80")),
        (False, _both(_set("channels", 64), _set("mel.n_mels", 64))),  # the graph takes 80
        (False, _set("mel.n_mels", 64)),
    ],
    "delay": [
        (True, _set("delay_samples", lambda rng: int(rng.integers(0, 80_001)))),
        (True, _set("delay_samples", 0)),
        (False, _set("delay_samples", 1e9)),
        (False, _set("delay_samples", 10**9)),
        (False, _set("delay_samples", lambda rng: int(rng.integers(480_001, 2**40)))),
        (False, _set("delay_samples", -1)),
        (False, _set("delay_samples", 640.0)),
        (False, _set("delay_samples", "640")),
        (False, _set("delay_samples", None)),
    ],
    "pad": [
        (True, _set("pad_value", lambda rng: float(rng.uniform(-20.0, 5.0)))),
        (True, _set("pad_value", 0)),
        (False, _set("pad_value", float("nan"))),
        (False, _set("pad_value", float("inf"))),
        (False, _set("pad_value", -float("inf"))),
        (False, _set("pad_value", "quiet")),
        (False, _set("pad_value", None)),
        (False, _set("pad_value", True)),
        (False, _drop("pad_value")),
    ],
    "state": [
        (False, _state_edit(lambda s, rng: s.pop(int(rng.integers(len(s)))))),
        (False, _state_edit(_swap)),
        (False, _state_edit(lambda s, rng: _pick(s, rng).update(input="state_in_x"))),
        (False, _state_edit(lambda s, rng: _pick(s, rng).update(output="audio"))),
        (False, _state_edit(_grow_last)),
        (False, _state_edit(lambda s, rng: _pick(s, rng)["shape"].__setitem__(0, 2))),
        (False, _state_edit(lambda s, rng: _pick(s, rng)["shape"].__setitem__(-1, 2**40))),
        (False, _state_edit(lambda s, rng: _pick(s, rng)["shape"].__setitem__(-1, 0))),
        (False, _state_edit(lambda s, rng: _pick(s, rng)["shape"].__setitem__(-1, 6.0))),
        (False, _state_edit(lambda s, rng: _pick(s, rng).update(shape=[1]))),
        (False, _state_edit(lambda s, rng: _pick(s, rng).update(dtype="float16"))),
        (False, _state_edit(lambda s, rng: _pick(s, rng).pop("dtype"))),
        (False, _state_edit(lambda s, rng: _pick(s, rng).update(note=1))),
        (False, _state_edit(lambda s, rng: s.append(copy.deepcopy(s[0])))),
        (False, _set("state", [])),
        (False, _set("state", {})),
        (False, _drop("state")),
    ],
    "mel": [
        (True, _set("mel.fmax", lambda rng: float(rng.uniform(4000.0, 8000.0)))),
        (True, _set("mel.fmin", lambda rng: float(rng.uniform(0.0, 100.0)))),
        (True, _set("mel.n_fft", 2048)),
        (True, _set("mel.win_length", 512)),
        (True, _set("mel.mel_scale", "htk")),
        (True, _set("mel.log_base", "10")),
        (True, _set("mel.pad_mode", "constant")),
        (True, _set("mel.mel_norm", None)),
        (True, _set("mel.clamp_min", 1e-4)),
        (False, _set("mel.n_fft", 1023)),
        (False, _set("mel.win_length", 2048)),
        (False, _set("mel.mel_scale", "bark")),
        (False, _set("mel.clamp_min", 0.0)),
        (False, _set("mel.clamp_min", -1.0)),
        (False, _set("mel.fmax", 30000.0)),
        (False, _set("mel.fmax", 0.0)),
        (False, _set("mel.fmax", float("nan"))),
        (False, _set("mel.fmin", -1.0)),
        (False, _set("mel.n_fft", "1024")),
        (False, _set("mel.sample_rate", 22050.5)),
        (False, _set("mel.extra_key", 1)),
        (False, _drop("mel.n_mels")),
        (False, _set("mel", [])),
        (False, _set("mel", None)),
        (False, _drop("mel")),
    ],
    "optional": [
        (True, _set("training_step", lambda rng: int(rng.integers(0, 2**40)))),
        (True, _drop("training_step")),
        (True, _set("checkpoint_sha256", "abc")),
        (True, _drop("checkpoint_sha256")),
        (True, _set("ganvoice_version", "9.9")),
        (True, _drop("ganvoice_version")),
        (True, _set("extra", {})),
        (True, _set("extra", {"opset": 99, "notes": [1, 2]})),
        (True, _drop("extra")),
        (False, _set("training_step", -1)),
        (False, _set("training_step", 1.5)),
        (False, _set("training_step", "7")),
        (False, _set("checkpoint_sha256", 5)),
        (False, _set("ganvoice_version", None)),
        (False, _set("extra", [])),
        (False, _set("extra", "x")),
    ],
    "unknown": [
        (False, _set("surprise", 1)),
    ],
}


def mutate(base: dict, seed: int) -> tuple[str, bool, str]:
    """``(metadata JSON text, valid, description)`` of case ``seed``: 1 to 3 mutations of distinct groups."""
    rng = np.random.default_rng(seed)
    only_valid = rng.random() < VALID_SHARE  # draw among the valid mutations only (the label still
    # comes from each mutation's own flag)
    groups = sorted(g for g in MUTATIONS if not only_valid or any(ok for ok, _ in MUTATIONS[g]))
    chosen = rng.choice(groups, size=int(rng.integers(1, 4)), replace=False)
    meta, valid, names = copy.deepcopy(base), True, []
    for group in chosen:
        options = [i for i, (ok, _) in enumerate(MUTATIONS[group]) if ok or not only_valid]
        index = int(rng.choice(options))
        ok, edit = MUTATIONS[group][index]
        try:
            result = edit(copy.deepcopy(meta), rng)
        except (KeyError, TypeError, IndexError, AttributeError):  # an earlier edit removed its target
            continue
        names.append(f"{group}[{index}]")
        valid &= ok
        if isinstance(result, str):  # the whole text replaced: nothing else applies
            return result, False, names[-1]
        meta = result
    return json.dumps(meta), valid, "+".join(names)


class Hang(Exception):
    pass


def _outcome(check: Callable[[], object]) -> str:
    """'accepted', 'refused' (one ModelFormatError line), 'hang' or 'traceback: ...'."""

    def alarm(signum, frame):
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        check()
        return "accepted"
    except ModelFormatError as exc:
        return "refused" if "\n" not in str(exc) else f"traceback: multi-line {exc!r}"
    except Hang:
        return "hang"
    except Exception as exc:  # noqa: BLE001 -- what the test counts
        return f"traceback: {type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _play(path) -> None:
    """Open with Engine and play a short random mel plus the flush: the audio must be finite."""
    from ganvoice.realtime import Engine

    engine = Engine(path, "cpu")
    frames = np.random.default_rng(0).normal(-5.0, 2.0, (engine.channels, 7)).astype(np.float32)
    audio = np.concatenate([engine.process(frames), engine.flush()])
    if not np.isfinite(audio).all():
        raise AssertionError("non-finite audio reached the output")


def _info(path) -> None:
    from ganvoice.realtime.cli import info

    info.main(args=[str(path)], standalone_mode=False)


def test_mutated_metadata_is_refused_in_one_line_or_played(tiny_model, tmp_path, capsys):
    session, _ = open_session(tiny_model)
    base = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    proto = onnx.load(tiny_model)
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    counts, wrong = Counter(), []
    for seed in range(CASES):
        text, valid, name = mutate(base, seed)
        checks = [("session", lambda text=text, name=name: checked_metadata(session, text, name))]
        if seed % FULL_EVERY == 0:
            path = tmp_path / f"case{seed}.onnx"
            entry.value = text
            path.write_bytes(proto.SerializeToString())
            checks += [("engine", lambda path=path: _play(path)), ("info", lambda path=path: _info(path))]
        for where, check in checks:
            outcome = _outcome(check)
            counts[(valid, outcome.split(":")[0])] += 1
            if outcome != ("accepted" if valid else "refused"):
                wrong.append(f"case {seed} {name} ({'valid' if valid else 'invalid'}) via {where}: {outcome}")
    capsys.readouterr()  # what `ganvoice info` printed
    print(dict(counts))
    assert not wrong, "\n".join(wrong[:20])
    # both kinds are well represented
    assert counts[(True, "accepted")] >= 100 and counts[(False, "refused")] >= 150


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: {**m, "delay_samples": 10**9}, "delay_samples"),
        (lambda m: {**m, "mel": {**m["mel"], "hop_length": 2**63}}, "mel.hop_length"),
        (lambda m: {**m, "sample_rate": 44100}, "sample_rate 44100 differs"),
        (lambda m: {**m, "sample_rate": 2.5}, "sample_rate must be an integer"),
        (lambda m: {**m, "pad_value": float("nan")}, "pad_value must be finite"),
        (lambda m: {**m, "sample_rate": "abc"}, "sample_rate must be an integer"),
        (lambda m: {**m, "extra": []}, "extra must be an object"),
    ],
)
def test_the_issue_reproductions_are_one_line_errors(tiny_model, edit, words):
    """The reproductions of issue 13 (each hung, played wrongly or raised a traceback before)."""
    session, _ = open_session(tiny_model)
    meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    with pytest.raises(ModelFormatError, match=words) as error:
        checked_metadata(session, json.dumps(edit(meta)), "model.onnx")
    assert "\n" not in str(error.value)


def test_non_finite_model_output_plays_as_silence_and_is_counted(tiny_model):
    from ganvoice.realtime import Engine

    engine = Engine(tiny_model, "cpu")
    good = np.full((engine.channels, 4), -5.0, np.float32)
    bad = np.full((engine.channels, 2), np.nan, np.float32)
    audio = np.concatenate([engine.process(good), engine.process(bad), engine.process(good)])
    assert np.isfinite(audio).all() and engine.stats.nonfinite >= 1
    assert engine.stats.summary()["nonfinite_calls"] == engine.stats.nonfinite
    assert np.abs(audio[-256:]).max() > 0  # the state was zeroed: sound comes back after the NaN
