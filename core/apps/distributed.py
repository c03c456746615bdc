"""Archive-scale scoring on Ray: the CLI's read → decode → gate → score loop on many workers.

    python -m core.distributed score SOURCE [SOURCE ...] --output results.parquet [--csv[=PATH]]
        [--workers N] [--cpus-per-worker C] [--batch-size B] [--profile site.json | --threshold T]
        [--model M] [--address ray://HOST:10001 | auto] [--num-cpus N] [--no-progress]

SOURCE is a local file, folder (searched recursively) or ZIP, expanded exactly as by
``python -m core.cli predict``, or a URI that pyarrow can open (``s3://bucket/prefix``,
``gs://…``, ``file:///…``): a folder there is listed the same way, a ZIP's members named the
same way. The driver only lists; each worker (a Ray Data actor, so the model loads once per
worker) reads the bytes of its own batch (a ZIP member with random access to the archive)
and runs :func:`core.scoring.iter_outcomes`, the same code as the CLI, so rows match the
CLI's. Image bytes never pass through Ray's object store and nothing but the results is
written to disk; logs and progress show counts only.

Output: one Parquet file with the CLI's columns (``file, probability, prediction, error,
note``) then ``pixel_sha256``, ``status`` (scored / refused / unreadable) and
``content_sha256`` (SHA-256 of the bytes read), one row per input, sorted by ``file``;
``--csv`` writes the same table as CSV in the CLI's format.

Resumable: while running, every finished batch is written at once as its own Parquet part
(``OUTPUT.parts/``, written to a temporary name then renamed, so a part is whole or absent).
A rerun with the same output skips every input whose path and content hash are already in
the output or its parts (refusals and undecodable files included; inputs that could not even
be read are tried again), scores the rest, and at the end merges everything into OUTPUT
(latest row per file) and removes the parts. A killed run or crashed worker loses at most
the batches in flight (Ray retries a crashed worker's batches itself). Two runs must not
write the same output at once.

Without ``--address`` a local Ray instance is started (``--num-cpus``, default all cores);
with one, the command joins that cluster (inside ``ray job submit`` use ``--address auto``).
Exit status as the CLI's: 0 when every row of the output is scored, 1 when some are not,
2 on usage errors (including Ray not installed: it is the optional extra in
``requirements-distributed.txt``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import math
import os
import resource
import sys
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from core.apps.cli import CSV_COLUMNS, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, csv_row
from core.errors import ImageError
from core.inputs.archive import clean_name, iter_zip_images
from core.inputs.archive import is_clutter as archive_skip  # and its rule for OS clutter
from core.inputs.archive import read_member as read_archive_member  # the CLI's own member checks
from core.inputs.formats import folder_suffixes, is_zip
from core.inputs.limits import MAX_FILE_BYTES
from core.inputs.read import read_bytes
from core.inputs.sources import collect_files

if TYPE_CHECKING:
    import pyarrow as pa

INSTALL_HINT = "pip install -r requirements-distributed.txt"
OUTPUT_COLUMNS = (*CSV_COLUMNS, "pixel_sha256", "status", "content_sha256")
STATUSES = ("scored", "refused", "unreadable")
SKIPPED = "skipped"  # marker rows from workers: counted by the driver, never written
SETTINGS_KEY = b"pneumonia_triage.distributed"  # Parquet metadata: the settings the rows were scored with


class UsageError(Exception):
    """A problem with the command line or its inputs (exit status 2)."""


# --------------------------------------------------------------------------- schemas


def output_schema() -> pa.Schema:
    """The Parquet schema of the results (probability is null unless scored)."""
    import pyarrow as pa

    return pa.schema([("file", pa.string()), ("probability", pa.float64()), ("prediction", pa.string()),
                      ("error", pa.string()), ("note", pa.string()), ("pixel_sha256", pa.string()),
                      ("status", pa.string()), ("content_sha256", pa.string())])


def _worker_schema() -> pa.Schema:
    """What a scoring worker returns: the output columns plus its process id and peak memory."""
    import pyarrow as pa

    return pa.schema([*output_schema(), ("_pid", pa.int64()), ("_peak_rss", pa.int64())])


# --------------------------------------------------------------------------- listing and reading


@dataclass(frozen=True)
class Entry:
    """One input image as listed by the driver: where to read it, or why it cannot be.

    ``name`` is the row's ``file`` (as the CLI names it); ``root`` is the URI the user gave
    (empty for a local path) and ``path`` the file's path on that filesystem (the ZIP's for
    an archive member, whose position among the archive's files is ``member``, else -1).
    ``error`` is set when listing already failed the way the CLI reports it.
    """

    name: str
    root: str = ""
    path: str = ""
    member: int = -1
    error: str = ""


def is_uri(source: str) -> bool:
    """True for ``scheme://…`` sources (read through a pyarrow filesystem)."""
    return "://" in source


def list_sources(sources: Iterable[str]) -> tuple[list[Entry], dict[str, Any]]:
    """Every input image, and the pyarrow filesystem of each URI the user gave.

    Local paths go through the CLI's :func:`core.inputs.sources.collect_files`; a URI
    folder is listed recursively with the same rules (no hidden files or folders, the CLI's
    suffixes). A missing file is kept so it gets an error row. ZIP archives are opened
    here, one at a time, to name their members (see :func:`list_archive`). Raises
    ``UsageError`` for a URI pyarrow cannot open.
    """
    from pyarrow import fs as pafs

    files: list[tuple[str, str, str]] = []  # (name, root, path)
    filesystems: dict[str, Any] = {}
    for source in sources:
        if not is_uri(source):
            files.extend((name, "", name) for name in collect_files([source]))
            continue
        try:
            filesystem, base = pafs.FileSystem.from_uri(source)
            info = filesystem.get_file_info(base)
            listing = filesystem.get_file_info(pafs.FileSelector(base, recursive=True)) \
                if info.type == pafs.FileType.Directory else None
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"cannot open {source}: {' '.join(str(exc).split())}") from None
        filesystems[source] = filesystem
        if listing is None:
            files.append((source, source, base))
            continue
        suffixes, found = folder_suffixes(), []
        for entry in listing:
            relative = entry.path[len(base):].lstrip("/") if entry.path.startswith(base) else entry.path
            parts = PurePosixPath(relative).parts
            if (entry.type == pafs.FileType.File and parts and not any(p.startswith(".") for p in parts)
                    and PurePosixPath(relative).suffix.lower() in suffixes):
                found.append((f"{source.rstrip('/')}/{relative}", source, entry.path))
        files.extend(sorted(found))
    entries: list[Entry] = []
    for name, root, path in files:
        if name.lower().endswith(".zip"):  # as iter_path_sources decides
            entries.extend(list_archive(name, root, path, filesystems))
        else:
            entries.append(Entry(name, root, path))
    return entries, filesystems


def list_archive(name: str, root: str, path: str, filesystems: dict[str, Any]) -> Iterator[Entry]:
    """The members of one ZIP input, named and refused exactly as by the CLI.

    The archive is read once (bounded, as the CLI reads it) and walked with the CLI's
    :func:`~core.inputs.archive.iter_zip_images`; members it refuses (nested, encrypted,
    too large, damaged) and an unreadable archive become error entries, the rest are
    read again by the workers, one member at a time.
    """
    data = read_item(name, root, path, filesystems)
    try:
        if isinstance(data, ImageError):
            raise data
        if not is_zip(data):
            raise ImageError("not a readable ZIP archive")
        for index, (member, payload) in enumerate(iter_zip_images(data, archive_name=None)):
            row = f"{name}/{member}"
            if isinstance(payload, ImageError):
                yield Entry(row, root, path, error=str(payload))
            else:
                yield Entry(row, root, path, member=index)
    except ImageError as exc:
        yield Entry(name, root, path, error=str(exc))


def read_remote(filesystem: Any, path: str) -> bytes | ImageError:
    """The bytes of one file on a pyarrow filesystem (bounded), or why it cannot be read."""
    try:
        with filesystem.open_input_stream(path) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return ImageError("cannot read file: not found")
    except IsADirectoryError:
        return ImageError("not a regular file")
    except (OSError, ValueError) as exc:
        return ImageError(f"cannot read file: {type(exc).__name__}")
    try:
        return read_bytes(data)  # the CLI's checks: empty, too large
    except ImageError as exc:
        return exc


def read_item(name: str, root: str, path: str, filesystems: dict[str, Any]) -> bytes | ImageError:
    """The bytes of a whole input file, or the ``ImageError`` the CLI would report."""
    if root:
        return read_remote(filesystems[root], path)
    try:
        return read_bytes(path)
    except ImageError as exc:
        return exc


def read_members(root: str, path: str, wanted: dict[int, str], filesystems: dict[str, Any]) -> dict[int, Any]:
    """``index → bytes or ImageError`` for some members of one ZIP, read with random access.

    ``wanted`` maps each member's position (as listed by :func:`list_archive`) to its row
    name; the archive's files are filtered and each member read by the CLI's own helpers,
    and a member whose name no longer matches (the archive changed) is reported, not guessed.
    """
    try:
        handle = filesystems[root].open_input_file(path) if root else open(path, "rb")  # noqa: SIM115
    except (OSError, ValueError) as exc:
        return dict.fromkeys(wanted, ImageError(f"cannot read file: {type(exc).__name__}"))
    with handle:
        try:
            archive = zipfile.ZipFile(handle)
            files = [i for i in archive.infolist() if not i.is_dir() and not archive_skip(i.filename)]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            return dict.fromkeys(wanted, ImageError("not a readable ZIP archive"))
        with archive:
            found: dict[int, Any] = {}
            for index, row in wanted.items():
                if index >= len(files) or not row.endswith(f"/{clean_name(files[index].filename)}"):
                    found[index] = ImageError("the archive changed while it was being scored; run again")
                else:
                    found[index] = read_archive_member(archive, files[index])
            return found


def content_hash(data: bytes) -> str:
    """SHA-256 of the bytes read: with the path, what identifies an input already scored."""
    return hashlib.sha256(data).hexdigest()


def work_items(entries: list[Entry], done: dict[str, str]) -> list[dict[str, Any]]:
    """One dataset row per image, carrying the content hash already on record for its name.

    So each worker needs only its own batch's share of the results so far, never all of it.
    """
    return [{"name": e.name, "root": e.root, "path": e.path, "member": e.member, "error": e.error,
             "expected": "" if e.error else done.get(e.name, "")} for e in entries]


# --------------------------------------------------------------------------- the scoring worker


def _peak_rss_bytes() -> int:
    """This process's peak resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Scorer:
    """A Ray Data actor: loads the model once, then scores batches with the CLI's loop.

    Each call gets up to ``batch_size`` work items, reads their bytes, skips those whose
    content hash is already on record, runs :func:`core.scoring.iter_outcomes` on the rest
    and formats rows with the CLI's :func:`core.apps.cli.csv_row`. Only names and results
    leave the worker; image bytes never enter Ray's object store.
    """

    def __init__(self, model: str | None, model_sha256: str, threshold: float, calibration: dict | None,
                 batch_size: int, threads: int, filesystems: dict[str, Any]) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        _limit_threads(threads)
        from core.calibration import Calibration
        from core.model import DEFAULT_MODEL_PATH, ModelError, load_bundle

        self.bundle = load_bundle(model or DEFAULT_MODEL_PATH)
        if self.bundle.metadata.sha256 != model_sha256:
            raise ModelError("this worker's model file differs from the driver's (different SHA-256)")
        self.calibration = Calibration.from_dict(calibration) if calibration else None
        self.threshold, self.batch_size, self.threads = threshold, batch_size, threads
        self.filesystems = filesystems

    def _sources(self, items: list[dict[str, Any]]) -> list[bytes | ImageError]:
        """The bytes (or reason) of each item; archive members grouped so each ZIP opens once."""
        members: dict[tuple[str, str], dict[int, str]] = {}
        for item in items:
            if item["member"] >= 0 and not item["error"]:
                members.setdefault((item["root"], item["path"]), {})[item["member"]] = item["name"]
        opened = {key: read_members(*key, wanted, self.filesystems) for key, wanted in members.items()}
        sources: list[bytes | ImageError] = []
        for item in items:
            if item["error"]:
                sources.append(ImageError(item["error"]))
            elif item["member"] >= 0:
                sources.append(opened[(item["root"], item["path"])][item["member"]])
            else:
                sources.append(read_item(item["name"], item["root"], item["path"], self.filesystems))
        return sources

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Rows for one batch (``skipped`` markers for inputs already scored)."""
        import pyarrow as pa

        from core.scoring import iter_outcomes

        items = batch.to_pylist()
        rows: list[dict[str, Any]] = []
        pending: list[tuple[str, bytes | ImageError]] = []
        hashes: list[str | None] = []
        for item, source in zip(items, self._sources(items), strict=True):
            sha = content_hash(source) if isinstance(source, bytes) else None
            if sha is not None and sha == item["expected"]:
                rows.append(_skipped_row(item["name"]))
                continue
            pending.append((item["name"], source))
            hashes.append(sha)
        outcomes = iter_outcomes(self.bundle, pending, batch_size=self.batch_size, workers=self.threads,
                                 calibration=self.calibration)
        for outcome, sha in zip(outcomes, hashes, strict=True):
            file, probability, prediction, error, note = csv_row(outcome, self.threshold)
            rows.append({"file": file, "probability": float(probability) if probability else None,
                         "prediction": prediction or None, "error": error or None, "note": note,
                         "pixel_sha256": outcome.pixel_sha256 or None, "status": str(outcome.status),
                         "content_sha256": sha})
        pid, peak = os.getpid(), _peak_rss_bytes()
        for row in rows:
            row["_pid"], row["_peak_rss"] = pid, peak
        return pa.Table.from_pylist(rows, schema=_worker_schema())


def _skipped_row(name: str) -> dict[str, Any]:
    return {"file": name, "probability": None, "prediction": None, "error": None, "note": "",
            "pixel_sha256": None, "status": SKIPPED, "content_sha256": None}


def _limit_threads(threads: int) -> None:
    """Keep TensorFlow to this worker's share of the CPUs (before it creates its thread pools)."""
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except (ImportError, RuntimeError):  # another backend, or TensorFlow already running
        pass


# --------------------------------------------------------------------------- the results on disk


def _open_output(output: str) -> tuple[Any, str]:
    """The pyarrow filesystem and path of an output (a local path or a URI)."""
    from pyarrow import fs as pafs

    if is_uri(output):
        try:
            return pafs.FileSystem.from_uri(output)
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"cannot open {output}: {' '.join(str(exc).split())}") from None
    return pafs.LocalFileSystem(), str(Path(output).absolute())


class ResultStore:
    """The output Parquet file plus the parts of runs not yet merged into it."""

    def __init__(self, output: str, settings: dict[str, Any]) -> None:
        from pyarrow import fs as pafs

        # As stored in the Parquet metadata (JSON), so a rerun compares like with like.
        self.output, self.settings = output, json.loads(json.dumps(settings))
        self.fs, self.path = _open_output(output)
        self.parts_dir = f"{self.path}.parts"
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.run_id, self.sequence = f"{time.time_ns():020d}", 0  # part names sort in the order written
        self.ignored: set[str] = set()  # damaged parts (their images are scored again)
        if self.local and not Path(self.path).parent.is_dir():
            raise UsageError(f"the folder to write {output} in does not exist")

    def _exists(self, path: str) -> bool:
        from pyarrow import fs as pafs

        return self.fs.get_file_info(path).type == pafs.FileType.File

    def files(self) -> list[str]:
        """The output (when present) then the parts, oldest first."""
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(self.parts_dir, allow_not_found=True)
        parts = sorted(i.path for i in self.fs.get_file_info(selector)
                       if i.type == pafs.FileType.File and i.path.endswith(".parquet"))
        return ([self.path] if self._exists(self.path) else []) + parts

    def _read(self, path: str, columns: list[str] | None = None) -> pa.Table | None:
        """One results file after checking its settings; ``None`` for an unreadable part."""
        import pyarrow.parquet as pq

        try:
            with self.fs.open_input_file(path) as handle:
                parquet = pq.ParquetFile(handle)
                metadata = parquet.schema_arrow.metadata or {}
                table = parquet.read(columns=columns)
        except (OSError, ValueError) as exc:
            if path == self.path:
                raise UsageError(f"{self.output} exists but is not a Parquet results file; choose another "
                                 f"--output ({type(exc).__name__})") from None
            self.ignored.add(path)
            return None
        if SETTINGS_KEY not in metadata or not set(columns or OUTPUT_COLUMNS) <= set(table.column_names):
            raise UsageError(f"{self.output} was not written by this command; choose another --output")
        recorded = json.loads(metadata[SETTINGS_KEY])
        for key in ("model_sha256", "threshold", "calibration"):
            if recorded.get(key) != self.settings.get(key):
                raise UsageError(f"{self.output} was scored with a different {key.replace('_', ' ')}; "
                                 "rerun with the same model and threshold or profile, or choose another --output")
        return table

    def recorded(self) -> dict[str, str]:
        """``file → content_sha256`` of every input already read (the latest row per file counts)."""
        done: dict[str, str] = {}
        for path in self.files():
            table = self._read(path, ["file", "content_sha256"])
            if table is None:
                continue
            for name, sha in zip(table.column("file").to_pylist(), table.column("content_sha256").to_pylist(),
                                 strict=True):
                if sha:
                    done[name] = sha
                else:
                    done.pop(name, None)  # could not be read last time: try again
        return done

    def _write_atomic(self, table: pa.Table, path: str) -> None:
        """A Parquet file that is either complete or absent (object stores publish on close)."""
        import pyarrow.parquet as pq

        schema = output_schema().with_metadata({SETTINGS_KEY: json.dumps(self.settings).encode()})
        table = table.select(list(OUTPUT_COLUMNS)).cast(schema)
        target = f"{path}.tmp" if self.local else path
        with self.fs.open_output_stream(target) as handle:
            pq.write_table(table, handle)
        if self.local:
            self.fs.move(target, path)

    def write_part(self, table: pa.Table) -> None:
        """Save one finished batch at once, as its own part."""
        if self.sequence == 0:
            self.fs.create_dir(self.parts_dir, recursive=True)
        self.sequence += 1
        self._write_atomic(table, f"{self.parts_dir}/part-{self.run_id}-{self.sequence:07d}.parquet")

    def merge(self) -> pa.Table:
        """Write the output: every row so far, the latest per file, sorted by file; drop the parts."""
        import pyarrow as pa
        from pyarrow import fs as pafs

        tables = [t for t in (self._read(p) for p in self.files()) if t is not None]
        schema = output_schema()
        table = pa.concat_tables([t.select(list(OUTPUT_COLUMNS)).cast(schema) for t in tables]) if tables \
            else schema.empty_table()
        table = table.append_column("_order", pa.array(range(table.num_rows), pa.int64()))
        latest = table.group_by("file", use_threads=False).aggregate([("_order", "max")]).column("_order_max")
        table = table.take(latest).sort_by("file").drop_columns(["_order"])
        self._write_atomic(table, self.path)
        if self.fs.get_file_info(self.parts_dir).type == pafs.FileType.Directory:
            self.fs.delete_dir(self.parts_dir)
        return table

    def write_csv(self, table: pa.Table, path: str) -> None:
        """The results as CSV in the CLI's format (its five columns first, then the hashes and status)."""
        fs, target = _open_output(path)
        temporary = target if is_uri(path) else f"{target}.tmp"
        with fs.open_output_stream(temporary) as handle:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(OUTPUT_COLUMNS)
            for batch in table.to_batches(max_chunksize=4096):
                for row in batch.to_pylist():
                    writer.writerow(csv_cells(row))
                handle.write(buffer.getvalue().encode("utf-8"))
                buffer.seek(0)
                buffer.truncate()
            handle.write(buffer.getvalue().encode("utf-8"))
        if temporary != target:
            fs.move(temporary, target)


def csv_cells(row: dict[str, Any]) -> list[str]:
    """A results row as CSV cells; the probability printed as the CLI prints it."""
    probability = row["probability"]
    cells = [row["file"], "" if probability is None else f"{probability:.6f}", row["prediction"] or "",
             row["error"] or "", row["note"] or ""]
    return cells + [row[c] or "" for c in OUTPUT_COLUMNS[len(CSV_COLUMNS):]]


# --------------------------------------------------------------------------- running it


@dataclass
class RunSummary:
    """What one run did: counts by status, skipped inputs, time, and the workers' peak memory."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    skipped: int = 0
    seconds: float = 0.0
    workers: int = 0
    peak_rss: dict[int, int] = field(default_factory=dict)  # worker process id -> peak RSS in bytes

    @property
    def processed(self) -> int:
        """Inputs this run scored, refused or found unreadable (not the skipped ones)."""
        return sum(self.counts.values())

    def add(self, block: pa.Table) -> pa.Table:
        """Count a block from the workers; returns its rows to save (without skip markers)."""
        import pyarrow.compute as pc

        statuses = block.column("status").to_pylist()
        self.skipped += statuses.count(SKIPPED)
        for status in STATUSES:
            self.counts[status] += statuses.count(status)
        for pid, peak in zip(block.column("_pid").to_pylist(), block.column("_peak_rss").to_pylist(), strict=True):
            self.peak_rss[pid] = max(peak, self.peak_rss.get(pid, 0))
        return block.filter(pc.not_equal(block.column("status"), SKIPPED))


def run_pipeline(items: list[dict[str, Any]], filesystems: dict[str, Any], store: ResultStore,
                 scorer_args: dict[str, Any], workers: int, cpus_per_worker: int, batch_size: int,
                 progress: bool) -> RunSummary:
    """Score ``items`` with Ray Data on a running Ray; every finished batch is saved as a part."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    summary = RunSummary(workers=workers)
    start = time.perf_counter()
    # One block per batch: each worker task is one batch, saved as soon as it comes back.
    dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / batch_size)))
    dataset = dataset.map_batches(
        Scorer, batch_size=batch_size, batch_format="pyarrow", num_cpus=cpus_per_worker,
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2),
        fn_constructor_kwargs={**scorer_args, "batch_size": batch_size, "threads": cpus_per_worker,
                               "filesystems": filesystems})
    for block in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows = summary.add(block)
        if rows.num_rows:
            store.write_part(rows)
    summary.seconds = time.perf_counter() - start
    return summary


def _import_ray() -> Any:
    """The ``ray`` module with Ray Data, or ``None`` when the optional extra is not installed."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        return None
    return ray


def _model_settings(model: str | None) -> tuple[str, float]:
    """The model's SHA-256 (checked against its metadata, without loading TensorFlow) and threshold."""
    from core.model import DEFAULT_MODEL_PATH, ModelError, load_metadata, sha256_file

    path = Path(model) if model else Path(DEFAULT_MODEL_PATH)
    try:
        if path.suffix != ".keras" or not path.is_file():
            raise ModelError(f"model file not found: {path}")
        meta = load_metadata(path)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    if sha256_file(path) != meta.sha256:
        raise UsageError(f"model file {path.name} does not match its metadata: the file is damaged, truncated "
                         "or was replaced")
    return meta.sha256, float(meta.threshold.value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.distributed",
                                     description="Pneumonia triage for whole archives, on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score folders, ZIPs or object-storage URIs into Parquet")
    score.add_argument("sources", nargs="+", metavar="SOURCE",
                       help="image files, folders or ZIPs, local or as URIs (s3://…, gs://…, file://…)")
    score.add_argument("--output", "-o", required=True, help="Parquet file to write (a rerun resumes it)")
    score.add_argument("--csv", nargs="?", const=True, default=None, metavar="PATH",
                       help="also write CSV (default path: the output's with .csv)")
    score.add_argument("--workers", type=int, default=None,
                       help="scoring workers, each loading the model once (default: CPUs / --cpus-per-worker)")
    score.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs (and TensorFlow threads) per worker")
    score.add_argument("--batch-size", type=int, default=32)
    score.add_argument("--threshold", type=float, default=None,
                       help="decision threshold on P(pneumonia); default: the model's operating threshold")
    score.add_argument("--profile", default=None,
                       help="site profile (JSON from 'core.cli calibrate'): use its threshold and calibration")
    score.add_argument("--model", default=None,
                       help="a .keras model with its .json beside it, as seen from every worker")
    score.add_argument("--address", default=None,
                       help="join this Ray cluster (ray://HOST:10001, HOST:6379 or auto); default: start a "
                            "local Ray")
    score.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    score.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                       help="Ray's progress bars on stderr (default: on)")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    """Raise ``UsageError`` for out-of-range or conflicting options (before anything starts)."""
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError("--threshold must be between 0 and 1")
    if args.threshold is not None and args.profile is not None:
        raise UsageError("--threshold and --profile cannot be combined (the profile sets the threshold)")
    for option in ("batch_size", "cpus_per_worker", "workers", "num_cpus"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1")
    if args.address is not None and args.num_cpus is not None:
        raise UsageError("--num-cpus is for a local Ray; a cluster has its own CPUs")


def _csv_path(args: argparse.Namespace) -> str | None:
    if args.csv is None:
        return None
    if args.csv is not True:
        return str(args.csv)
    return args.output[: -len(".parquet")] + ".csv" if args.output.endswith(".parquet") else f"{args.output}.csv"


def _start_ray(ray: Any, args: argparse.Namespace) -> tuple[bool, int]:
    """Start or join Ray; returns whether this command started it and the CPUs it offers."""
    if ray.is_initialized():  # called from Python with Ray already running: use it
        return False, int(ray.cluster_resources().get("CPU", 1))
    quiet = {"log_to_driver": True, "logging_level": logging.WARNING}
    if args.address is None:
        cpus = args.num_cpus or os.cpu_count() or 1
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
        return True, cpus
    ray.init(address=args.address, **quiet)
    return True, int(ray.cluster_resources().get("CPU", 1))


def score_command(args: argparse.Namespace) -> int:
    """Run ``score``: list, skip what is on record, score the rest on Ray, merge, summarise."""
    ray = _import_ray()
    if ray is None:
        print("error: archive-scale scoring needs Ray, an optional extra that is not installed; install it "
              f"with: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _check_args(args)
        entries, filesystems = list_sources(args.sources)
        if not entries:
            raise UsageError("no image files found in the given sources")
        model_sha256, threshold = _model_settings(args.model)
        calibration = None
        if args.profile is not None:
            from core.calibration import ProfileError, SiteProfile, check_model

            try:
                profile = SiteProfile.read(args.profile)
                check_model(profile, model_sha256)
            except ProfileError as exc:
                raise UsageError(str(exc)) from None
            threshold, calibration = profile.threshold, dict(profile.calibration)
            print(f"site profile {profile.site!r} ({profile.profile_id}): threshold {profile.threshold:.4f}",
                  file=sys.stderr)
        elif args.threshold is not None:
            threshold = args.threshold
        settings = {"model_sha256": model_sha256, "threshold": threshold, "calibration": calibration}
        store = ResultStore(args.output, settings)
        items = work_items(entries, store.recorded())
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    started, cpus = _start_ray(ray, args)
    try:
        workers = args.workers or max(1, cpus // args.cpus_per_worker)
        if workers * args.cpus_per_worker > cpus:
            print(f"warning: {workers} workers × {args.cpus_per_worker} CPUs exceed the {cpus} CPUs Ray offers "
                  "now; the run waits for more", file=sys.stderr)
        scorer_args = {"model": args.model, "model_sha256": model_sha256, "threshold": threshold,
                       "calibration": calibration}
        summary = run_pipeline(items, filesystems, store, scorer_args, workers, args.cpus_per_worker,
                               args.batch_size, args.progress)
    except KeyboardInterrupt:
        print(f"interrupted: {store.sequence} finished batches are saved; rerun the same command to score the "
              "rest", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a failed Ray job (e.g. a worker cannot load the model)
        print(f"error: the scoring job failed ({type(exc).__name__}): {' '.join(str(exc).split())[:500]}; "
              f"{store.sequence} finished batches are saved, a rerun resumes", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if started:
            ray.shutdown()
    return _finish(args, store, summary)


def _finish(args: argparse.Namespace, store: ResultStore, summary: RunSummary) -> int:
    """Merge the parts into the output, write the CSV, print the summary; returns the exit status."""
    import pyarrow.compute as pc

    if store.ignored:
        print(f"warning: {len(store.ignored)} damaged part files were ignored; their images were scored again",
              file=sys.stderr)
    if summary.skipped:
        print(f"skipped {summary.skipped} images already scored in {args.output} (same path and content)",
              file=sys.stderr)
    table = store.merge()
    csv_path = _csv_path(args)
    if csv_path is not None:
        store.write_csv(table, csv_path)
    totals = {s: int(pc.sum(pc.equal(table.column("status"), s)).as_py() or 0) for s in STATUSES}
    written = f"{args.output} and {csv_path}" if csv_path else args.output
    print(f"wrote {table.num_rows} rows to {written} ({totals['scored']} scored, {totals['refused']} refused, "
          f"{totals['unreadable']} unreadable)", file=sys.stderr)
    rate = summary.processed / summary.seconds if summary.seconds > 0 else 0.0
    peak = max(summary.peak_rss.values(), default=0) / 2**20
    c = summary.counts
    print(f"this run: scored {c['scored']}, refused {c['refused']}, unreadable {c['unreadable']}, skipped "
          f"{summary.skipped}; {summary.processed} images in {summary.seconds:.1f} s = {rate:.2f} images/s on "
          f"{summary.workers} workers (peak worker memory {peak:.0f} MB)", file=sys.stderr)
    return EXIT_SOME_FAILED if totals["refused"] or totals["unreadable"] else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "score":
        return score_command(args)
    return EXIT_USAGE  # pragma: no cover - argparse enforces a known command


if __name__ == "__main__":
    sys.exit(main())
