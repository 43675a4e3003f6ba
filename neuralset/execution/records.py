"""What workers leave in the store: staged arrays, per-batch manifests and error entries.

Layout under the store root::

    manifests/<run>/<chunk>-<batch>.pkl   records staged by a worker, not yet in the index
    errors/<key[:2]>/<key>.json           why an item failed (traceback, job id, log file)

A worker (:func:`work_chunk`) computes its chunk batch by batch; after each batch it stages the
array files (:meth:`~neuralset.store.Store.stage_arrays`) and writes one manifest atomically.
Only the driver commits manifests to the index (:func:`commit_manifests`), so SQLite is never
written from many hosts; a driver that died leaves manifests that the next driver commits
instead of recomputing them. Error entries are kept apart from the index: a failed item stays
missing, and ``retry`` mode recomputes exactly the items that have one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..store import Store, provenance
from ..store.files import file_problem, replacing
from .claims import ClaimHeartbeat, Claims
from .protocols import ItemT, Preparable, computes_per_item

__all__ = [
    "ComputeSetupError",
    "ItemError",
    "work_chunk",
    "commit_manifests",
    "write_error",
    "read_errors",
    "clear_errors",
    "current_job_id",
]


class ComputeSetupError(RuntimeError):
    """Nothing can be computed: what every item needs failed (a model that cannot be loaded).

    Raised by an extractor's ``compute_many``, it is not retried item by item: the items of the
    batch, and every later item of the same ``prepare`` in this worker process, get this error
    at once (each retry would fail the same way, after the same wait).
    """


#: Tracebacks of setup errors per (prepare run folder, extractor key), in this process.
_SETUP_FAILURES: dict[tuple[str, str], str] = {}


@dataclasses.dataclass(frozen=True)
class ItemError:
    """An item that failed: why (``reason``), where (``job_id``, ``log``) and the traceback."""

    key: str
    label: str
    reason: str  # "error", "timeout", "cancelled", "out of memory", "failed", "crashed", "lost"
    error: str
    job_id: str = ""
    log: str = ""
    time: float = 0.0

    def summary(self) -> str:
        where = f" in job {self.job_id}" if self.job_id else ""
        log = f" (log: {self.log})" if self.log else ""
        last = self.error.strip().splitlines()[-1] if self.error.strip() else ""
        return f"{self.label}: {self.reason}{where}{log}: {last}"


def current_job_id() -> str:
    """Job id of the running worker: SLURM array task, else ``local-<pid>``."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    job = os.environ.get("SLURM_JOB_ID")
    return job if job else f"local-{os.getpid()}"


def _write_pickle_atomic(path: Path, value: Any, root: Path) -> None:
    for attempt in range(5):  # a driver may remove an empty folder between mkdir and open
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with replacing(path, root) as tmp, open(tmp, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            return
        except FileNotFoundError:
            if attempt == 4:
                raise


def _compute_batch(
    extractor: Preparable[ItemT], store: Store, items: Sequence[ItemT]
) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """``(key, label, record or None, traceback)`` per item; a failing batch is retried item by item.

    An extractor computing its items one by one (the default ``compute_many``) has each item
    stored by a thread while the next is computed: writing, syncing and hashing the arrays
    release the GIL, so they overlap the computation instead of following it.
    """
    out: list[tuple[str, str, dict[str, Any] | None, str]] = []
    if len(items) > 1 and computes_per_item(extractor):
        pairs: Iterable[tuple[ItemT, Any]] = _one_by_one(extractor, items, out)
    else:
        pairs = _batched(extractor, items, out)
    with ThreadPoolExecutor(1, thread_name_prefix="neuralset-stage") as pool:
        staged = [
            (item, pool.submit(_stage, extractor, store, item, computed))
            for item, computed in pairs
        ]
        for item, future in staged:
            try:
                record = future.result()
            except Exception:
                out.append((item.key, item.label, None, _format(future.exception())))
            else:
                out.append((item.key, item.label, record, ""))
    return out


def _format(err: BaseException | None) -> str:
    return "".join(traceback.format_exception(err)) if err is not None else ""


def _batched(
    extractor: Preparable[ItemT], items: Sequence[ItemT], out: list[Any]
) -> list[tuple[ItemT, Any]]:
    """The items computed in one ``compute_many`` call (item by item if it fails)."""
    try:
        return list(zip(items, extractor.compute_many(items)))
    except ComputeSetupError:
        raise  # not an item's fault: see work_chunk
    except Exception:
        if len(items) == 1:
            out.append((items[0].key, items[0].label, None, traceback.format_exc()))
            return []
        return list(_one_by_one(extractor, items, out))


def _one_by_one(
    extractor: Preparable[ItemT], items: Sequence[ItemT], out: list[Any]
) -> Iterator[tuple[ItemT, Any]]:
    """Each item computed alone, as it is asked for; a failure is recorded in ``out``."""
    for item in items:
        try:
            computed = extractor.compute_many([item])[0]
        except ComputeSetupError:
            raise
        except Exception:
            out.append((item.key, item.label, None, traceback.format_exc()))
        else:
            yield item, computed


def _stage(
    extractor: Preparable[ItemT], store: Store, item: ItemT, computed: Any
) -> dict[str, Any]:
    """Stage one computed item's arrays (or value) and give its record."""
    computed = extractor.to_storage(computed, item.label)  # storage precision (float16...)
    prov = provenance(extractor, source=item.label, item_key=item.key)
    if computed.arrays:
        record = store.stage_arrays(
            item.key, computed.arrays, meta=computed.meta, label=item.label, prov=prov
        )
        if computed.value is not None:
            record["value"] = computed.value
        return record
    return {
        "kind": "value",
        "value": computed.value,
        "meta": dict(computed.meta),
        "label": item.label,
        "provenance": prov,
        "nbytes": 0,
    }


def _compute_or_setup_failure(
    extractor: Preparable[ItemT], store: Store, batch: Sequence[ItemT], manifest_dir: str
) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """:func:`_compute_batch`, unless a :class:`ComputeSetupError` already failed this run here."""
    memo = (manifest_dir, extractor.prepare_key)
    failure = _SETUP_FAILURES.get(memo)
    if failure is None:
        try:
            return _compute_batch(extractor, store, batch)
        except ComputeSetupError:
            if len(_SETUP_FAILURES) > 1000:
                _SETUP_FAILURES.clear()
            failure = _SETUP_FAILURES[memo] = traceback.format_exc()
    return [(item.key, item.label, None, failure) for item in batch]


def work_chunk(
    extractor: Preparable[ItemT],
    store: Store,
    manifest_dir: str,
    claims_root: str | None,
    claims_ttl: float,
    owner: str,
    items: Sequence[ItemT],
    chunk: int,
) -> int:
    """Worker entry point: compute ``items`` in batches, stage files, write one manifest per batch.

    Never writes the store index. Keeps the claims of its items alive while it runs, and skips
    items whose claim another driver took over (possible only once this run's driver died and
    its claims expired, e.g. while this job was pending). Returns the number of items processed.
    """
    job_id = current_job_id()
    _quiet_slurm_warning_signal()
    claims = Claims(claims_root, owner=owner, ttl=claims_ttl) if claims_root else None
    keys = [item.key for item in items]
    heartbeat = ClaimHeartbeat(claims, keys) if claims is not None else None
    if heartbeat is not None:
        heartbeat.__enter__()
    try:
        size = max(extractor.batch_size, 1)
        done = 0
        for b, start in enumerate(range(0, len(items), size)):
            batch = list(items[start : start + size])
            if claims is not None:
                batch = [item for item in batch if claims.owner_of(item.key) == owner]
            if not batch:
                continue
            entries = _compute_or_setup_failure(extractor, store, batch, manifest_dir)
            done += len(batch)
            _write_pickle_atomic(
                Path(manifest_dir) / f"{chunk:06d}-{b:06d}.pkl",
                {"job_id": job_id, "entries": entries},
                store.root,
            )
    finally:
        if heartbeat is not None:
            heartbeat.__exit__()
    return done


def _quiet_slurm_warning_signal() -> None:
    """Let SLURM end the job itself (TIMEOUT, CANCELLED), keeping the manifests written so far.

    submitit asks SLURM for a SIGUSR2 shortly before the time limit and raises inside the running
    function; for a prepare chunk the batches already written are kept anyway, so the signal is
    only logged. submitit ignores SIGTERM (sent by ``scancel`` and at the time limit, a few
    seconds before SIGKILL); a chunk stops at once instead, so that no manifest appears after
    the driver has seen the job end.
    """
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return
    import signal
    import sys

    def note(signum: int, frame: Any) -> None:
        print("neuralset: SLURM time limit approaching", file=sys.stderr, flush=True)

    def stop(signum: int, frame: Any) -> None:  # scancel, time limit: stop now, batches kept
        print("neuralset: terminated by SLURM, stopping", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGUSR2, note)
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        pass


def commit_manifests(
    store: Store, folders: Iterable[Path], log_of: Any = None, *, remove_empty: bool = False
) -> tuple[list[str], list[ItemError], set[Path]]:
    """Commit the records of every manifest in ``folders``; write error entries for failures.

    Manifests are deleted once committed. Another driver may commit the same manifest at the same
    time: records are identical, so committing twice is harmless. A record whose array files
    are no longer whole (removed or cut short since) is not committed: its item stays missing.
    A manifest that cannot be read is set aside (renamed ``*.pkl.damaged``). Returns the
    committed keys, the new errors and the manifest paths read.
    """
    committed: list[str] = []
    errors: list[ItemError] = []
    seen: set[Path] = set()
    for folder in folders:
        try:
            paths = sorted(
                p
                for p in Path(folder).iterdir()
                if p.suffix == ".pkl" and not p.name.startswith(".")
            )
        except FileNotFoundError:
            continue
        for path in paths:
            manifest = _load_manifest(path)
            if manifest is None:
                continue
            _commit_entries(store, manifest, log_of, committed, errors)
            seen.add(path)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        if remove_empty:
            try:
                Path(folder).rmdir()  # only once empty
            except OSError:
                pass
    return committed, errors, seen


def _load_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``; None when gone (committed by another driver) or damaged
    (then renamed aside, so that it is not read again)."""
    try:
        with open(path, "rb") as fh:
            manifest = pickle.load(fh)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
            raise ValueError("not a manifest")
        return manifest
    except FileNotFoundError:
        return None
    except Exception:  # garbled: its items are computed again
        try:
            os.replace(path, path.with_name(path.name + ".damaged"))
        except OSError:
            pass
        return None


def _commit_entries(
    store: Store,
    manifest: dict[str, Any],
    log_of: Any,
    committed: list[str],
    errors: list[ItemError],
) -> None:
    job_id = str(manifest.get("job_id", ""))
    for key, label, record, error in manifest["entries"]:
        if record is not None:
            if record.get("kind") == "arrays" and any(
                file_problem(store.array_dir(key) / f"{name}.npy", spec) is not None
                for name, spec in record["files"].items()
            ):
                continue  # staged files damaged since: compute the item again
            store.commit(key, record)
            clear_errors(store, [key])
            committed.append(key)
        else:
            log = log_of(job_id) if log_of is not None else ""
            err = ItemError(key, label, "error", error, job_id=job_id, log=log, time=time.time())
            write_error(store, err)
            errors.append(err)


def _error_path(store: Store, key: str) -> Path:
    return store.root / "errors" / key[:2] / f"{key}.json"


def write_error(store: Store, error: ItemError) -> None:
    """Record why an item failed (replaces an earlier error entry of the same item).

    On a disk too full to take it, nothing is recorded (the failure is still reported by the
    ``prepare`` that saw it; ``retry`` then cannot single the item out).
    """
    path = _error_path(store, error.key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, store.root) as tmp:
            tmp.write_text(json.dumps(dataclasses.asdict(error)))
    except OSError:
        pass


def read_errors(store: Store, keys: Iterable[str] | None = None) -> list[ItemError]:
    """Error entries of ``keys`` (all of them when ``keys`` is None).

    Parameters
    ----------
    store
        The store whose ``errors/`` folder is read.
    keys
        Item keys; ``None``: every error entry.
    """
    paths = sorted((store.root / "errors").glob("*/*.json"))
    if keys is not None:
        wanted = set(keys)
        paths = [p for p in paths if p.stem in wanted]
    out = []
    for path in paths:
        try:
            out.append(ItemError(**json.loads(path.read_text())))
        except (FileNotFoundError, ValueError, TypeError):
            continue
    return out


def clear_errors(store: Store, keys: Iterable[str]) -> None:
    """Remove the error entries of ``keys``."""
    for key in keys:
        try:
            _error_path(store, key).unlink()
        except FileNotFoundError:
            pass
