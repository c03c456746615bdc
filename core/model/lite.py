"""A LiteRT copy of a loaded Keras model: the same function, scored with less CPU.

On the CPUs this tool runs on, about half of batch scoring's CPU is the model. LiteRT's XNNPACK
kernels run the shipped ensemble's graph in about three quarters of the CPU time Keras'
``predict_on_batch`` takes, and a single image in about 60% of its time (``bench/bench_inference.py``
prints both side by side). So every score comes from the copy whenever it can be built, never
from a mix chosen by batch size or job length: the CLI, the dashboard and archive scoring run
the same function. The Keras model stays the reference: Grad-CAM and model fitting use it, and
a test holds the copy's outputs to it.

The copy is converted in memory, never written to disk, once per model per process, on first
use (about 2 s for the shipped ensemble; ``conversion_seconds`` says how long it took). Without
LiteRT installed, for a graph it cannot convert, or with ``PNEUMONIA_LITERT=0`` in the
environment, there is no copy and the caller falls back to Keras. The model itself is never
modified.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_INPUT = "image"
# PNEUMONIA_LITERT=0 scores with Keras even when LiteRT is installed (to compare the two, or to
# rule the copy out); read when a model's copy would be built.
DISABLE_ENV = "PNEUMONIA_LITERT"
_BUILD_LOCK = threading.Lock()
# Keyed by the Keras model object (weakly: a model that is dropped takes its copy with it);
# None records a model that could not be converted, so it is not tried again on every batch.
_COPIES: weakref.WeakKeyDictionary[Any, LiteModel | None] = weakref.WeakKeyDictionary()


class LiteModel:
    """The converted graph with its interpreter; call it like ``predict_on_batch``.

    The interpreter is not safe to share between threads, and one copy serves every
    session of the dashboard, so calls take turns under a lock.
    """

    def __init__(self, flatbuffer: bytes, outputs: int, conversion_seconds: float) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=_usable_cpus())
        self._runner = self._interpreter.get_signature_runner()
        self._outputs = outputs
        self._lock = threading.Lock()
        self.conversion_seconds = conversion_seconds

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """The model's outputs, in the Keras model's order, for a float32 ``(N, S, S, 1)`` batch."""
        if batch.dtype != np.float32 or batch.ndim != 4:
            raise ValueError("expected a float32 (N, S, S, 1) batch")
        with self._lock:
            result = self._runner(**{_INPUT: batch})
            # Copies: the interpreter reuses its buffers on the next call.
            return [np.array(result[f"output_{i}"]) for i in range(self._outputs)]


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def lite_model(model: Any) -> LiteModel | None:
    """The LiteRT copy of ``model`` (built on first call, then cached), or ``None`` without one."""
    try:
        # Built already: no lock on the scoring path, so one model's conversion (the research
        # model's, say) never holds up scoring with another.
        return _COPIES[model]
    except KeyError:
        pass
    with _BUILD_LOCK:
        if model not in _COPIES:
            _COPIES[model] = _build(model)
        return _COPIES[model]


def _build(model: Any) -> LiteModel | None:
    if os.environ.get(DISABLE_ENV) == "0":
        return None
    try:
        import ai_edge_litert.interpreter  # noqa: F401 - only to know whether the runtime is installed
    except ImportError:
        log.info("LiteRT is not installed: scoring with Keras")
        return None
    start = time.perf_counter()
    try:
        flatbuffer, outputs = convert(model)
        copy = LiteModel(flatbuffer, outputs, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - any converter failure means "score with Keras", never a crash
        log.warning("model %s could not be converted for LiteRT (%s): scoring with Keras",
                    getattr(model, "name", "?"), type(exc).__name__)
        return None
    return copy


def convert(model: Any) -> tuple[bytes, int]:
    """The LiteRT flatbuffer of ``model``'s inference graph and its number of outputs.

    Traced from one ``tf.function`` whose variables are frozen into the flatbuffer, so
    nothing is exported to disk on the way (``from_keras_model`` saves a temporary
    SavedModel first).
    """
    import tensorflow as tf

    outputs = len(model.outputs)

    @tf.function(input_signature=[tf.TensorSpec(model.input_shape, tf.float32, name=_INPUT)])
    def serve(image):
        result = model(image, training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return {f"output_{i}": tensor for i, tensor in enumerate(result)}

    # The converter freezes the variables the object it is given tracks: Keras 3 variables
    # are wrapped, so hand it their TensorFlow variables.
    holder = tf.Module()
    holder.weights = [getattr(v, "value", v) for v in model.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    return converter.convert(), outputs
