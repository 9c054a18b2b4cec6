"""GStreamer element ``ganvoice``: audio -> streaming log-mel -> an exported ganvoice model -> audio.

Loaded by gst-python's plugin loader (``gstreamer1.0-python3-plugin-loader``) from
``$GST_PLUGIN_PATH/python``; ``ganvoice gst-env`` prints the environment that points GStreamer here and
makes the installed ganvoice importable for the loader's Python. The work is done by
:class:`ganvoice.realtime.resynth.Resynthesizer` (the streaming analyzer, the engine and the player's
block step); this file is only the GStreamer glue.

- Caps: ``audio/x-raw, format=F32LE, channels=1`` at the model's rate (put ``audioconvert !
  audioresample`` before it, as usual). Another rate, format or channel count is an element error.
- Alignment: output timestamps line up with the input: the model's warm-up is dropped and the tail is
  pushed at EOS, so a file -> file run keeps its length and equals ``ganvoice play --output``.
  The LATENCY query adds the most the output trails the input (analysis lookahead + one hop + the
  model's delay), so live pipelines and sinks compensate.
- A flushing seek (FLUSH_STOP) resets the stream; a DISCONT buffer ends the running stream (its tail is
  pushed) and starts a new one.
- A bad model path, an ONNX file without ganvoice metadata, or a noise model -> an element error on the
  bus with one line, when the element goes to READY.
"""

from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, GObject, Gst  # noqa: E402

Gst.init_check(None)

import numpy as np  # noqa: E402

from ganvoice.assets import bundled_model_path  # noqa: E402
from ganvoice.errors import first_line  # noqa: E402
from ganvoice.realtime.engine import Engine  # noqa: E402
from ganvoice.realtime.model import PROVIDERS  # noqa: E402
from ganvoice.realtime.resynth import Resynthesizer  # noqa: E402

MAX_THREADS = 64
CAPS = "audio/x-raw, format=F32LE, channels=1, layout=interleaved"
TEMPLATE_CAPS = Gst.Caps.from_string(f"{CAPS}, rate=[1, 2147483647]")
READWRITE_READY = GObject.ParamFlags.READWRITE | Gst.PARAM_MUTABLE_READY


def bundled(noise: bool = False) -> str:
    """The bundled model's path (the default of the ``model`` property)."""
    return str(bundled_model_path(noise))


def post_error(element: Gst.Element, message: str, debug: str = "") -> None:
    """An ERROR message on the bus from ``element``: ``message`` is one line a user can act on."""
    error = GLib.Error.new_literal(Gst.ResourceError.quark(), message, Gst.ResourceError.SETTINGS)
    element.post_message(Gst.Message.new_error(element, error, debug or message))


def model_properties(default_model: str) -> dict:
    """The ``model``/``provider``/``threads`` properties shared by both elements."""
    return {
        "model": (
            str,
            "Model",
            "Exported ganvoice model (.onnx); applies when the element goes to READY",
            default_model,
            READWRITE_READY,
        ),
        "provider": (
            str,
            "Provider",
            f"ONNX Runtime execution provider: {', '.join(PROVIDERS)}",
            "auto",
            READWRITE_READY,
        ),
        "threads": (
            int,
            "Threads",
            "ONNX Runtime intra-op threads",
            1,
            MAX_THREADS,
            1,
            READWRITE_READY,
        ),
    }


def open_engine(
    element: Gst.Element, model: str, provider: str, threads: int, noise: bool = False
) -> Engine | None:
    """The engine for the element's properties (an empty ``model``: the bundled one), or ``None`` after
    posting the reason as an error."""
    try:
        return Engine(model or bundled(noise), provider, threads)
    except Exception as exc:  # noqa: BLE001 -- every failure becomes one error message on the bus
        post_error(element, f"ganvoice: {first_line(exc)}", repr(exc))
        return None


class GanvoiceFilter(Gst.Element):
    """The ``ganvoice`` element (see the module docstring)."""

    GST_PLUGIN_NAME = "ganvoice"
    __gstmetadata__ = (
        "ganvoice resynthesis",
        "Filter/Effect/Audio",
        "Streams audio through a ganvoice vocoder: streaming log-mel analysis, the exported ONNX "
        "model (ONNX Runtime), audio out, aligned with the input",
        "ganvoice",
    )
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS, TEMPLATE_CAPS),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, TEMPLATE_CAPS),
    )
    __gproperties__ = model_properties(bundled())

    def __init__(self):
        super().__init__()
        self.props_ = {"model": bundled(), "provider": "auto", "threads": 1}
        self.resynth: Resynthesizer | None = None
        self._base_pts = 0
        self._failed = False
        self.sinkpad = Gst.Pad.new_from_template(self.get_pad_template("sink"), "sink")
        self.sinkpad.set_chain_function_full(self._chain)
        self.sinkpad.set_event_function_full(self._sink_event)
        self.sinkpad.set_query_function_full(self._sink_query)
        self.add_pad(self.sinkpad)
        self.srcpad = Gst.Pad.new_from_template(self.get_pad_template("src"), "src")
        self.srcpad.set_query_function_full(self._src_query)
        self.add_pad(self.srcpad)

    # -- properties ----------------------------------------------------------------------------------
    def do_get_property(self, prop):
        return self.props_[prop.name]

    def do_set_property(self, prop, value):
        self.props_[prop.name] = value

    # -- state ---------------------------------------------------------------------------------------
    def do_change_state(self, transition):
        if transition == Gst.StateChange.NULL_TO_READY:
            props = self.props_
            engine = open_engine(self, props["model"], props["provider"], props["threads"])
            if engine is None:
                return Gst.StateChangeReturn.FAILURE
            try:
                self.resynth = Resynthesizer(engine)
            except Exception as exc:  # noqa: BLE001 -- e.g. a noise model: one error message
                post_error(self, f"ganvoice: {first_line(exc)}", repr(exc))
                return Gst.StateChangeReturn.FAILURE
            self._failed = False
        result = Gst.Element.do_change_state(self, transition)
        if transition == Gst.StateChange.PAUSED_TO_READY and self.resynth is not None:
            self.resynth.reset()
        elif transition == Gst.StateChange.READY_TO_NULL:
            self.resynth = None
        return result

    # -- caps ----------------------------------------------------------------------------------------
    def _caps(self) -> Gst.Caps:
        if self.resynth is None:
            return TEMPLATE_CAPS.copy()
        return Gst.Caps.from_string(f"{CAPS}, rate={self.resynth.sample_rate}")

    def _caps_problem(self, caps: Gst.Caps) -> str | None:
        """Why ``caps`` cannot go in (one line), or ``None``."""
        if caps.can_intersect(self._caps()):
            return None
        s = caps.get_structure(0)
        want = self.resynth.sample_rate if self.resynth is not None else "the model's rate"
        return (
            f"ganvoice: the input must be F32LE mono at {want} Hz, got {s.get_value('format') or '?'} "
            f"with {s.get_value('channels') or '?'} channel(s) at {s.get_value('rate') or '?'} Hz; "
            "put 'audioconvert ! audioresample' before ganvoice"
        )

    def _settled_elsewhere(self, caps: Gst.Caps) -> bool:
        """Every structure of ``caps`` fixes a rate, format or channel count that we cannot take."""
        if self.resynth is None or caps.is_empty() or caps.is_any():
            return False
        wanted = {"rate": self.resynth.sample_rate, "channels": 1}
        for index in range(caps.get_size()):
            structure = caps.get_structure(index)
            fixed = {name: structure.get_int(name) for name in wanted}
            mismatch = any(ok and value != wanted[name] for name, (ok, value) in fixed.items())
            audio_format = structure.get_string("format")
            if not mismatch and (audio_format is None or audio_format == "F32LE"):
                return False
        return True

    def _fail(self, message: str, debug: str = "") -> Gst.FlowReturn:
        """Post the one error message of this run, then take no more data.

        Upstream gets FLUSHING (it stops quietly) rather than ERROR or NOT_NEGOTIATED, which would make
        it post a second, vaguer error ("Internal data stream error") that races the application's
        teardown (gst-launch-1.0 can hang on it).
        """
        if not self._failed:
            self._failed = True
            post_error(self, message, debug)
        return Gst.FlowReturn.FLUSHING

    # -- data ----------------------------------------------------------------------------------------
    def _chain(self, pad, parent, buffer):
        resynth = self.resynth
        if resynth is None or self._failed:
            return Gst.FlowReturn.FLUSHING
        if buffer.has_flags(Gst.BufferFlags.DISCONT) and resynth.active:
            flow = self._finish_stream()  # a gap: the old stream ends here, a new one begins
            if flow != Gst.FlowReturn.OK:
                return flow
        if not resynth.active and buffer.pts != Gst.CLOCK_TIME_NONE:
            self._base_pts = buffer.pts
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return self._fail("ganvoice: cannot read an input buffer")
        try:
            samples = np.frombuffer(info.data, dtype="<f4").copy()
        finally:
            buffer.unmap(info)
        try:
            first = resynth.samples_out
            audio = resynth.push(samples)
        except Exception as exc:  # noqa: BLE001 -- one error message, not a traceback
            return self._fail(f"ganvoice: {first_line(exc)}", repr(exc))
        return self._push(audio, first)

    def _push(self, audio: np.ndarray, first: int) -> Gst.FlowReturn:
        """Push ``audio``, the output samples ``first ...`` of the current stream, timestamped."""
        if len(audio) == 0:
            return Gst.FlowReturn.OK
        rate = self.resynth.sample_rate
        out = Gst.Buffer.new_wrapped(audio.astype("<f4").tobytes())
        end = self._base_pts + Gst.util_uint64_scale_int(first + len(audio), Gst.SECOND, rate)
        out.pts = self._base_pts + Gst.util_uint64_scale_int(first, Gst.SECOND, rate)
        out.duration = end - out.pts
        out.offset, out.offset_end = first, first + len(audio)
        if first == 0:
            out.set_flags(Gst.BufferFlags.DISCONT)
        return self.srcpad.push(out)

    def _finish_stream(self) -> Gst.FlowReturn:
        """Push the running stream's tail, then reset for the next one."""
        resynth = self.resynth
        if resynth is None or not resynth.active:
            return Gst.FlowReturn.OK
        first = resynth.samples_out
        flow = self._push(resynth.finish(), first)
        resynth.reset()
        return flow

    # -- events and queries --------------------------------------------------------------------------
    def _sink_event(self, pad, parent, event):
        kind = event.type
        if kind == Gst.EventType.CAPS:
            caps = event.parse_caps()
            problem = self._caps_problem(caps)
            if problem is not None:
                self._fail(problem, caps.to_string())
                return True  # taken, so that upstream's push meets FLUSHING, not NOT_NEGOTIATED
            return self.srcpad.push_event(Gst.Event.new_caps(caps))
        if kind == Gst.EventType.EOS:
            if self._failed:
                return True  # the run has failed: no EOS (a sink prerolling on it races the teardown)
            self._finish_stream()
        elif kind == Gst.EventType.FLUSH_STOP and self.resynth is not None:
            self.resynth.reset()
        return pad.event_default(parent, event)

    def _sink_query(self, pad, parent, query):
        kind = query.type
        if kind == Gst.QueryType.CAPS:
            query_filter = query.parse_caps()
            caps = self._caps()
            if query_filter is not None:
                if self._settled_elsewhere(query_filter):
                    # an upstream with no other choice: let its caps come, so the CAPS event says why
                    caps = TEMPLATE_CAPS
                caps = query_filter.intersect_full(caps, Gst.CapsIntersectMode.FIRST)
            query.set_caps_result(caps)
            return True
        if kind == Gst.QueryType.ACCEPT_CAPS:
            caps = query.parse_accept_caps()
            query.set_accept_caps_result(caps.can_intersect(TEMPLATE_CAPS))  # the CAPS event checks the rate
            return True
        return pad.query_default(parent, query)

    def _src_query(self, pad, parent, query):
        kind = query.type
        if kind == Gst.QueryType.LATENCY:
            if not self.sinkpad.peer_query(query):
                return False
            live, least, most = query.parse_latency()
            ours = self.latency_ns
            query.set_latency(live, least + ours, most + ours if most != Gst.CLOCK_TIME_NONE else most)
            return True
        if kind == Gst.QueryType.CAPS:
            query_filter = query.parse_caps()
            caps = self._caps()
            if query_filter is not None:
                caps = query_filter.intersect_full(caps, Gst.CapsIntersectMode.FIRST)
            query.set_caps_result(caps)
            return True
        return pad.query_default(parent, query)

    @property
    def latency_ns(self) -> int:
        """The input-to-output latency this element adds (0 before the model is open)."""
        if self.resynth is None:
            return 0
        return Gst.util_uint64_scale_int(self.resynth.latency_samples, Gst.SECOND, self.resynth.sample_rate)


GObject.type_register(GanvoiceFilter)
__gstelementfactory__ = ("ganvoice", Gst.Rank.NONE, GanvoiceFilter)
