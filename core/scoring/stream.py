"""Scoring many images: batched, bounded in memory, never stopped by one bad file.

:func:`iter_outcomes` is the one read → decode → gate → score loop; the CLI, the
worklist, the single-image page, evaluation and archive scoring all go through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import numpy as np

from core.calibration.probability import Calibration
from core.capture import Capture, refusal_note
from core.errors import ImageError
from core.gate import SourceInfo, describe_source, image_statistics, quality_flags, result_note
from core.inputs.read import Source, read_bytes
from core.model import ModelBundle
from core.preprocessing import prepare
from core.scoring.outcome import Outcome, refused, scored, unreadable
from core.scoring.predict import score_prepared


@dataclass(frozen=True)
class _Prepared:
    data: bytes
    gray: np.ndarray  # upright grayscale after capture, decoded at reduced JPEG scale
    image: np.ndarray  # the model input
    info: SourceInfo | None
    capture: Capture
    stats: dict[str, float] | None  # the gate's image statistics (only when the model has a gate)


def _safe_prepare(source: Source | ImageError, size: int, describe: bool) -> _Prepared | str:
    """The model input (plus what the gate needs), or a one-line reason it could not be made.

    A source that is already an ``ImageError`` (e.g. an archive member refused before
    reading) is reported with its own reason.
    """
    if isinstance(source, ImageError):
        return str(source)
    try:
        data = read_bytes(source)
        # core.preprocessing.prepare, keeping the decoded radiograph for callers that show a
        # thumbnail, so nothing is decoded twice.
        prepared = prepare(data, size)
        info = stats = None
        if describe:
            info = dataclasses.replace(describe_source(data), colour_scene=prepared.capture.is_colour_scene)
            # Here rather than in the main loop: they run on the decode threads, beside the model.
            stats = image_statistics(prepared.image)
        return _Prepared(data, prepared.gray, prepared.image, info, prepared.capture, stats)
    except ImageError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop a batch
        return f"unexpected error while reading the image ({type(exc).__name__})"


def iter_outcomes(
    bundle: ModelBundle,
    items: Iterable[tuple[str, Source | ImageError]],
    batch_size: int = 32,
    workers: int = 2,
    calibration: Calibration | None = None,
) -> Iterator[Outcome]:
    """Score ``(name, source)`` pairs in order, yielding one :class:`Outcome` each.

    Probabilities are calibrated: with ``calibration`` (a site profile's), else with the
    model's shipped calibration.

    Decoding runs on ``workers`` threads (Pillow and numpy release the GIL), the model
    sees batches of ``batch_size``, and the next batch is decoded while the model scores
    the current one, so at most two batches are held in memory at a time. When the
    model ships a "cannot assess" gate, images it refuses come back REFUSED with a code
    and a reason, never with a probability.
    """
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be at least 1")
    size, describe = bundle.input_size, bundle.gate is not None
    calibration = calibration or bundle.calibration
    iterator = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers)

    def submit() -> tuple[list, list[Future]] | None:
        chunk = list(islice(iterator, batch_size))
        if not chunk:
            return None
        return chunk, [pool.submit(_safe_prepare, source, size, describe) for _, source in chunk]

    try:
        pending = submit()
        while pending is not None:
            chunk, futures = pending
            prepared = [future.result() for future in futures]
            # The model's turn: decoding of the next batch overlaps with it.
            pending = submit()
            good = [p for p in prepared if isinstance(p, _Prepared)]
            # The gate's statistics, once: they decide refusals and the quality flags alike.
            stats = [p.stats for p in good] if describe else None
            scores = iter(zip(score_prepared(bundle, np.stack([p.image for p in good]), [p.info for p in good],
                                             stats) if good else [], stats or [{}] * len(good), strict=True))
            for (name, _), item in zip(chunk, prepared, strict=True):
                if not isinstance(item, _Prepared):
                    yield unreadable(name, item)
                    continue
                (prob, refusal), image_stats = next(scores)
                prob = float(calibration.apply([prob])[0])
                if refusal is not None:
                    yield refused(name, refusal.code, refusal.reason, gray=item.gray, note=refusal_note(item.capture))
                    continue
                flags = ()
                if item.info is not None:
                    flags = quality_flags(item.info, image_stats, item.capture.skew_degrees)
                yield scored(name, prob, data=item.data, gray=item.gray, quality=flags,
                             note=result_note(item.capture.note, flags))
    finally:
        # A consumer that stops early (a rerun, a closed stream) does not wait for the batch
        # being decoded ahead: queued decodes are cancelled.
        pool.shutdown(wait=True, cancel_futures=True)


def score_one(bundle: ModelBundle, source: Source, name: str = "image",
              calibration: Calibration | None = None) -> Outcome:
    """The outcome for one image (never raises for a bad image: see its status)."""
    return next(iter_outcomes(bundle, [(name, source)], batch_size=1, workers=1, calibration=calibration))


def predict_one(bundle: ModelBundle, source: Source, calibration: Calibration | None = None) -> float:
    """Calibrated P(pneumonia) for one image; raises ``ImageError`` if it cannot be read or assessed."""
    outcome = score_one(bundle, source, calibration=calibration)
    if not outcome.ok:
        raise ImageError(str(outcome.error))
    return float(outcome.probability)
