"""The site profile: one small JSON file (``<site>.json``) holding a site's operating point.

A profile holds only figures, hashes and the site name — never file names or image data —
so it can be shared with the model's maintainers or across sites without disclosing patients.
It is tied to one model file by its SHA-256: a profile is meaningless for any other model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from core.calibration.probability import Calibration, validate_scores
from core.calibration.site import RULES, choose_threshold, threshold_table

SCHEMA = 1
PROFILE_METRICS = ("sensitivity", "specificity", "ppv", "npv", "referred", "accuracy")
CASE_KEYS = ("normal", "pneumonia", "patients", "refused", "unreadable")
MAX_SITE_NAME = 80
MAX_FILE_BYTES = 1_000_000  # a real profile is ~2 kB; refuse to parse anything huge
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
# Text that looks like a path or an image/data file name: such text must never enter a profile.
_FILE_LIKE = re.compile(
    r"[/\\]|\.(png|jpe?g|dcm|dicom|bmp|tiff?|gif|webp|heic|npy|npz|csv|json|zip|keras|h5)$", re.IGNORECASE
)


class ProfileError(ValueError):
    """A site profile that cannot be used; the message is one line, safe to show a user."""


def _fail(reason: str) -> NoReturn:
    raise ProfileError(f"invalid site profile: {reason}")


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        _fail(f"'{name}' must be text, got {type(value).__name__}")
    if len(value) > limit or not value.isprintable():
        _fail(f"'{name}' must be at most {limit} printable characters")
    if _FILE_LIKE.search(value):
        _fail(f"'{name}' must not look like a file name or path")
    return value


def _number(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(f"'{name}' must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        _fail(f"'{name}' must be finite")
    return float(value)


def _metrics(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        _fail("'metrics' must be an object")
    missing = [m for m in PROFILE_METRICS if m not in value]
    if missing:
        _fail(f"'metrics' is missing {', '.join(missing)}")
    extra = set(value) - set(PROFILE_METRICS)
    if extra:
        _fail(f"'metrics' has unknown entries: {', '.join(sorted(map(str, extra)))}")
    out = {}
    for name in PROFILE_METRICS:
        entry = value[name]
        if not isinstance(entry, dict) or set(entry) != {"value", "ci"}:
            _fail(f"metric '{name}' must be an object with 'value' and 'ci'")
        ci = entry["ci"]
        if not isinstance(ci, list) or len(ci) != 2:
            _fail(f"metric '{name}' ci must be a list [lo, hi]")
        # None stands for an undefined rate (e.g. PPV when nobody is referred); JSON has no NaN.
        numbers = [_number(v, f"metrics.{name}", allow_none=True) for v in (entry["value"], *ci)]
        if any(v is not None and not 0 <= v <= 1 for v in numbers):
            _fail(f"metric '{name}' must lie within [0, 1]")
        out[name] = {"value": numbers[0], "ci": numbers[1:]}
    return out


def _cases(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) != set(CASE_KEYS):
        _fail(f"'cases' must be an object with exactly {', '.join(CASE_KEYS)}")
    for key in CASE_KEYS:
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            _fail(f"cases '{key}' must be a non-negative integer")
    return {key: int(value[key]) for key in CASE_KEYS}


def _calibration(value: Any) -> dict[str, Any]:
    try:
        calibration = Calibration.from_dict(value)
    except (TypeError, ValueError) as exc:
        _fail(str(exc))
    _text(calibration.fitted_on, "calibration.fitted_on", MAX_SITE_NAME)
    return calibration.to_dict()


def _created(value: Any) -> str:
    if not isinstance(value, str) or not _CREATED.fullmatch(value):
        _fail("'created' must be a UTC time like 2025-01-31T12:00:00Z")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        _fail(f"'created' is not a real date: {value}")
    return value


def check_site_name(site: Any) -> str:
    """``site`` if a profile can hold it (non-empty, short, printable, not like a file name), else ProfileError."""
    if not isinstance(site, str) or not site.strip():
        _fail("'site' must be a non-empty name")
    return _text(site, "site", MAX_SITE_NAME)


@dataclass(frozen=True)
class SiteProfile:
    """A site's chosen threshold, the local evidence for it, and the model it belongs to."""

    site: str
    created: str
    model_sha256: str
    threshold: float
    rule: str
    target: float | None
    rule_description: str
    metrics: dict = field(repr=False)
    calibration: dict = field(repr=False)
    cases: dict = field(repr=False)
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        # Validate (and normalise) on every construction path, not only when reading files.
        if not isinstance(self.site, str) or not self.site.strip():
            _fail("'site' must be a non-empty name")
        _text(self.site, "site", MAX_SITE_NAME)
        _created(self.created)
        if not isinstance(self.model_sha256, str) or not _SHA256.fullmatch(self.model_sha256):
            _fail("'model_sha256' must be 64 lowercase hexadecimal characters")
        threshold = _number(self.threshold, "threshold")
        if not 0 <= threshold <= 1:
            _fail(f"'threshold' must be within [0, 1], got {threshold:g}")
        if self.rule not in RULES:
            _fail(f"'rule' must be one of {', '.join(RULES)}")
        target = _number(self.target, "target", allow_none=True)
        if target is not None and not 0 <= target <= 1:
            _fail(f"'target' must be within [0, 1], got {target:g}")
        _text(self.rule_description, "rule_description", 200)
        if isinstance(self.schema, bool) or self.schema != SCHEMA:
            _fail(f"schema {self.schema!r} is not supported (this program reads schema {SCHEMA})")
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "metrics", _metrics(self.metrics))
        object.__setattr__(self, "calibration", _calibration(self.calibration))
        object.__setattr__(self, "cases", _cases(self.cases))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready fields (the ``profile_id`` is derived, not stored)."""
        return asdict(self)

    def canonical_json(self) -> str:
        """Key-sorted, whitespace-free JSON: the same profile always gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)

    @property
    def profile_id(self) -> str:
        """First 12 hex characters of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()[:12]

    @property
    def file_name(self) -> str:
        """A safe ``<site>.json`` file name for this profile."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.site).strip("-").lower()
        return f"{slug or 'site'}.json"

    def to_json(self) -> str:
        """The file's text: indented, key-sorted JSON (what ``write`` stores and a download offers)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as indented JSON, atomically (a reader never sees half a file)."""
        target = Path(path)
        text = self.to_json()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".profile-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def from_dict(cls, data: Any) -> SiteProfile:
        """Build from parsed JSON, or ProfileError with a one-line reason."""
        if not isinstance(data, dict):
            _fail("the file must hold a JSON object")
        required = [f for f in cls.__dataclass_fields__ if f != "schema"]
        missing = [key for key in required if key not in data]
        if missing:
            _fail(f"missing {', '.join(missing)}")
        extra = set(data) - set(cls.__dataclass_fields__)
        if extra:
            _fail(f"unknown keys: {', '.join(sorted(map(str, extra)))}")
        return cls(**data)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SiteProfile:
        """Read and validate a profile file, or ProfileError with a one-line reason."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ProfileError(f"cannot read the site profile: {exc.strerror or exc}") from exc
        return cls.loads(raw)

    @classmethod
    def loads(cls, raw: bytes) -> SiteProfile:
        """Parse and validate a profile from its bytes (e.g. an upload, never written to disk)."""
        if len(raw) > MAX_FILE_BYTES:
            _fail("the file is too large to be a site profile")

        def no_constants(name: str) -> None:
            _fail(f"{name} is not a valid number")

        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
        except UnicodeDecodeError:
            _fail("the file is not UTF-8 text")
        except json.JSONDecodeError as exc:
            _fail(f"not valid JSON (line {exc.lineno}, column {exc.colno})")
        except RecursionError:
            _fail("the JSON is nested too deeply")
        return cls.from_dict(data)


def check_model(profile: SiteProfile, model_sha256: str) -> None:
    """ProfileError unless ``profile`` was made for the model with this SHA-256."""
    if str(model_sha256).strip().lower() != profile.model_sha256:
        raise ProfileError(
            f"this profile was made for another model (sha256 {profile.model_sha256[:12]}…); "
            "the model changed: re-calibrate"
        )


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def build_profile(
    site: str,
    model_sha256: str,
    labels: Any,
    probabilities: Any,
    groups: Any = None,
    rule: str = "sensitivity",
    value: float = 0.95,
    calibration: Calibration | None = None,
    refused: int = 0,
    unreadable: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[SiteProfile, pd.DataFrame]:
    """A site profile from a labelled local set, plus the full threshold table behind it.

    ``probabilities`` are the model's raw outputs; with ``calibration`` they are calibrated
    first, so the threshold is on the calibrated scale the dashboard shows (calibration is
    monotone, so the local sensitivity and specificity are the same on either scale).
    ``refused``/``unreadable`` count images the gate refused or that could not be read; they
    are recorded, not scored. The metrics at the chosen threshold use the same bootstrap
    resamples (same ``seed``) as the table.
    """
    y, p = validate_scores(labels, probabilities)
    for name, count in (("refused", refused), ("unreadable", unreadable)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {count!r}")
    calibration = calibration if calibration is not None else Calibration("none")
    if not isinstance(calibration, Calibration):
        raise ValueError("calibration must be a Calibration")
    scores = calibration.apply(p)
    table = threshold_table(y, scores, groups=groups, n_boot=n_boot, seed=seed)
    choice = choose_threshold(table, rule=rule, value=value)
    # A one-row table: the same resamples as the full table, and works for a manual threshold
    # that is not one of the table's rows.
    row = threshold_table(y, scores, groups=groups, thresholds=[choice.threshold], n_boot=n_boot, seed=seed).iloc[0]
    metrics = {
        name: {"value": _json_number(row[name]), "ci": [_json_number(row[f"{name}_{end}"]) for end in ("lo", "hi")]}
        for name in PROFILE_METRICS
    }
    patients = len(y) if groups is None else len(np.unique(np.asarray(groups)))
    profile = SiteProfile(
        site=site,
        created=_utc_now(),
        model_sha256=str(model_sha256).strip().lower(),
        threshold=choice.threshold,
        rule=choice.rule,
        target=choice.target,
        rule_description=choice.description,
        metrics=metrics,
        calibration=calibration.to_dict(),
        cases={
            "normal": int(np.sum(y == 0)),
            "pneumonia": int(np.sum(y == 1)),
            "patients": int(patients),
            "refused": int(refused),
            "unreadable": int(unreadable),
        },
    )
    return profile, table
