"""GStreamer element ``ganvoicesrc``: an unconditional (noise-conditioned) ganvoice model as a source.

The latent frames are :class:`ganvoice.realtime.sources.NoiseSource`'s seeded random walk (``seed``);
each buffer is one :class:`~ganvoice.realtime.blockstep.BlockStep` of ``samplesperbuffer`` samples
from the :class:`~ganvoice.realtime.engine.Engine`, as ``ganvoice play --noise`` plays it. The same seed
gives the same audio. ``is-live`` makes it a live source paced by the pipeline clock (like
``audiotestsrc is-live=true``); ``num-buffers`` (from ``GstBaseSrc``) limits the length. A bad model
path, a non-ganvoice ONNX file or a mel model -> an element error on the bus with one line.
"""

from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
from gi.repository import GObject, Gst, GstBase  # noqa: E402

Gst.init_check(None)

import numpy as np  # noqa: E402
from ganvoice_gst import (  # noqa: E402 -- the sibling plugin module (same python/ folder)
    CAPS,
    TEMPLATE_CAPS,
    bundled,
    model_properties,
    open_engine,
    post_error,
)

from ganvoice.errors import first_line  # noqa: E402
from ganvoice.realtime.blockstep import BlockStep  # noqa: E402
from ganvoice.realtime.sources import NoiseSource  # noqa: E402

DEFAULT_SAMPLES_PER_BUFFER = 1024
MAX_SAMPLES_PER_BUFFER = 1 << 20
MAX_SEED = 2**31 - 1


class GanvoiceSrc(GstBase.BaseSrc):
    """The ``ganvoicesrc`` element (see the module docstring)."""

    GST_PLUGIN_NAME = "ganvoicesrc"
    __gstmetadata__ = (
        "ganvoice noise source",
        "Source/Audio",
        "Plays an unconditional ganvoice model: a seeded latent random walk through the exported ONNX "
        "model (ONNX Runtime)",
        "ganvoice",
    )
    __gsttemplates__ = Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, TEMPLATE_CAPS)
    __gproperties__ = {
        **model_properties(bundled(noise=True)),
        "seed": (
            int,
            "Seed",
            "Seed of the latent random walk (the same seed gives the same audio)",
            0,
            MAX_SEED,
            0,
            GObject.ParamFlags.READWRITE | Gst.PARAM_MUTABLE_READY,
        ),
        "samplesperbuffer": (
            int,
            "Samples per buffer",
            "Samples in each output buffer",
            1,
            MAX_SAMPLES_PER_BUFFER,
            DEFAULT_SAMPLES_PER_BUFFER,
            GObject.ParamFlags.READWRITE | Gst.PARAM_MUTABLE_READY,
        ),
        "is-live": (
            bool,
            "Is live",
            "Run as a live source, paced by the pipeline clock",
            False,
            GObject.ParamFlags.READWRITE | Gst.PARAM_MUTABLE_READY,
        ),
    }

    def __init__(self):
        super().__init__()
        # property values by name (GstBaseSrc's own fields, e.g. is_live, must not be shadowed)
        self.props_ = {
            "model": bundled(noise=True),
            "provider": "auto",
            "threads": 1,
            "seed": 0,
            "samplesperbuffer": DEFAULT_SAMPLES_PER_BUFFER,
            "is-live": False,
        }
        self.engine = None
        self.step: BlockStep | None = None
        self.set_format(Gst.Format.TIME)

    def do_get_property(self, prop):
        return self.props_[prop.name]

    def do_set_property(self, prop, value):
        self.props_[prop.name] = value
        if prop.name == "is-live":
            self.set_live(value)

    # -- lifecycle -----------------------------------------------------------------------------------
    def do_change_state(self, transition):
        if transition == Gst.StateChange.NULL_TO_READY and not self._open():
            return Gst.StateChangeReturn.FAILURE
        result = Gst.Element.do_change_state(self, transition)
        if transition == Gst.StateChange.READY_TO_NULL:
            self.engine, self.step = None, None
        return result

    def _open(self) -> bool:
        """Open and check the model (READY), so a bad one fails the state change with our one error."""
        props = self.props_
        engine = open_engine(self, props["model"], props["provider"], props["threads"], noise=True)
        if engine is None:
            return False
        if engine.metadata.conditioning != "noise":
            post_error(
                self,
                f"ganvoicesrc: {engine.model_path} is a {engine.metadata.conditioning} model; "
                "ganvoicesrc plays noise models (use the ganvoice filter for mel models)",
            )
            return False
        try:
            block = props["samplesperbuffer"]
            engine.prepare(engine.model_rate, block)
            engine.set_source(NoiseSource(engine.channels, seed=props["seed"]))
            self.step = BlockStep(engine, block)
            self._block = np.zeros(block, dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 -- one error message
            post_error(self, f"ganvoicesrc: {first_line(exc)}", repr(exc))
            return False
        self.engine = engine
        return True

    def do_start(self):
        """A new stream: the latent walk restarts from the seed."""
        if self.engine is None:
            return False
        self.engine.reset()
        self._samples = 0
        return True

    def do_stop(self):
        return True

    def do_is_seekable(self):
        return False

    # -- caps ----------------------------------------------------------------------------------------
    def do_get_caps(self, caps_filter):
        if self.engine is None:
            caps = TEMPLATE_CAPS.copy()
        else:
            caps = Gst.Caps.from_string(f"{CAPS}, rate={self.engine.model_rate}")
        if caps_filter is not None:
            caps = caps_filter.intersect_full(caps, Gst.CapsIntersectMode.FIRST)
        return caps

    # -- data ----------------------------------------------------------------------------------------
    def do_create(self, offset, size, buf):
        if self.step is None:
            return Gst.FlowReturn.FLUSHING, None
        audio = self._block
        got, _ = self.step.play(audio)
        rate = self.engine.model_rate
        out = Gst.Buffer.new_wrapped(audio[:got].astype("<f4").tobytes())
        start = Gst.util_uint64_scale_int(self._samples, Gst.SECOND, rate)
        out.pts = start
        out.duration = Gst.util_uint64_scale_int(self._samples + got, Gst.SECOND, rate) - start
        out.offset, out.offset_end = self._samples, self._samples + got
        self._samples += got
        return Gst.FlowReturn.OK, out

    def do_get_times(self, buffer):
        if not self.props_["is-live"] or buffer.pts == Gst.CLOCK_TIME_NONE:
            return Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE
        end = buffer.pts + buffer.duration  # a live buffer goes out once its last sample is due
        return end, Gst.CLOCK_TIME_NONE

    def do_gst_base_src_query(self, query):  # do_query would be ambiguous with Gst.Element.query
        if query.type == Gst.QueryType.LATENCY and self.engine is not None:
            live = self.props_["is-live"]
            block = Gst.util_uint64_scale_int(len(self._block), Gst.SECOND, self.engine.model_rate)
            query.set_latency(live, block if live else 0, Gst.CLOCK_TIME_NONE)
            return True
        return GstBase.BaseSrc.do_query(self, query)


GObject.type_register(GanvoiceSrc)
__gstelementfactory__ = ("ganvoicesrc", Gst.Rank.NONE, GanvoiceSrc)
