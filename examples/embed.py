"""The engine in your own sounddevice stream, fed by a "TTS": python examples/embed.py MODEL.onnx [SPEECH]"""

import sys
import time

import sounddevice as sd

from ganvoice.assets import DEMO_AUDIO, asset_path
from ganvoice.audio import load_audio
from ganvoice.mel import mel_spectrogram
from ganvoice.realtime import Engine, PushSource

engine = Engine(sys.argv[1])  # checks the model, opens ONNX Runtime, preallocates
device = sd.query_devices(kind="output")
rate, channels = int(device["default_samplerate"]), min(2, device["max_output_channels"])
engine.prepare(rate, max_block=256)  # the device's rate (the engine resamples) and block size
frames = PushSource(engine.channels)  # thread-safe queue; the audio side never waits on it
engine.set_source(frames)


def callback(outdata, n, time_info, status):  # no allocation, no lock, no I/O in here
    engine.render_into(outdata[:, 0])  # silence (and a counted underflow) if no frame is ready
    outdata[:, 1:] = outdata[:, :1]  # mono model -> every channel


speech = sys.argv[2] if len(sys.argv) > 2 else asset_path(DEMO_AUDIO)
mel = mel_spectrogram(load_audio(speech, engine.model_rate), engine.metadata.mel)
chunks = [mel[:, start : start + 8] for start in range(0, mel.shape[1], 8)]  # your TTS's output
frames.push(chunks[0])
with sd.OutputStream(samplerate=rate, blocksize=256, channels=channels, callback=callback):
    for chunk in chunks[1:]:  # a little faster than real time, as a streaming TTS would
        time.sleep(0.8 * chunk.shape[1] * engine.metadata.hop_length / engine.model_rate)
        frames.push(chunk)
    frames.close()
    while not engine.finished:
        time.sleep(0.05)
print(engine.stats.summary())
