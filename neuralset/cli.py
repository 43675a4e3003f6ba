"""The ``neuralset`` command line.

::

    neuralset demo [--cache DIR] ...                 the synthetic pipeline end to end
    neuralset prepare CONFIG.yaml [--retry] [--a.b=value ...]
    neuralset inspect CONFIG.yaml [--keys N] [--a.b=value ...]
    neuralset fetch CONFIG.yaml [--dry-run] [--source URL|annex] [--jobs N] [--a.b=value ...]
    neuralset mirror URL DEST [--listing auto|s3|http-index] [--jobs N]   metadata of a remote BIDS
    neuralset cache [--store DIR | --config CONFIG.yaml] ls
    neuralset cache [...] info KEY                   (a unique key prefix is enough)
    neuralset cache [...] clear [KEY ...] [--older-than 7d] [--yes]  (keys or unique prefixes)
    neuralset cache [...] verify [--full] [--fix]    check every entry against its record
    neuralset cache migrate CONFIG.yaml [...] [--store DIR] [--finish]   re-key a 0.1 store
    neuralset kinds [--markdown]                     every YAML kind: class, module, summary

Dotted overrides change the YAML before it is validated, e.g.
``--executor.kind=slurm --executor.partition=gpu --extractors.meg.frequency=120``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "parse_duration"]

_OVERRIDE = re.compile(r"^--[A-Za-z_][\w.\-]*=")


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` or ``"1w"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30s, 15m, 2h, 7d; got {text!r}"
        )
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * scale


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralset", description="neuralset pipelines from the command line"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "demo", help="run the synthetic demo (options: neuralset demo --help)", add_help=False
    )
    prep = sub.add_parser("prepare", help="prepare every extractor of a pipeline config")
    prep.add_argument("config", type=Path)
    prep.add_argument(
        "--retry", action="store_true", help="recompute only the items that failed before"
    )
    prep.add_argument("--no-progress", action="store_true", help="no progress bars")
    insp = sub.add_parser("inspect", help="describe a pipeline without reading any signal")
    insp.add_argument("config", type=Path)
    insp.add_argument("--keys", type=int, default=10, help="item keys listed per extractor")
    kinds = sub.add_parser("kinds", help="list the YAML kinds (kind, class, module, summary)")
    kinds.add_argument("--markdown", action="store_true", help="as a Markdown table")
    fetch = sub.add_parser(
        "fetch", help="fetch the data files the pipeline's selection needs (git-annex or HTTP)"
    )
    fetch.add_argument("config", type=Path)
    fetch.add_argument(
        "--dry-run", action="store_true", help="only say what would be fetched (reads no signal)"
    )
    fetch.add_argument(
        "--source", default=None, help="'annex' or an http(s):// URL prefix (default: the study's)"
    )
    fetch.add_argument("--jobs", type=int, default=1, help="parallel transfers")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    mirror = sub.add_parser(
        "mirror",
        help="mirror the metadata of a BIDS dataset served over HTTP(S) (recordings stay remote)",
    )
    mirror.add_argument("url", help="s3://bucket/prefix, or the http(s):// URL of its top folder")
    mirror.add_argument("dest", type=Path, help="the local mirror (BidsStudy path)")
    mirror.add_argument("--listing", default="auto", choices=("auto", "s3", "http-index"))
    mirror.add_argument("--jobs", type=int, default=8, help="parallel requests")
    _cache_parser(sub.add_parser("cache", help="list, describe or clear store entries"))
    return parser


def _cache_parser(cache: argparse.ArgumentParser) -> None:
    """The options and actions of ``neuralset cache``."""
    where = cache.add_mutually_exclusive_group()
    where.add_argument(
        "--store", type=Path, help="store folder (default: $NEURALSET_CACHE or ~/.cache/neuralset)"
    )
    where.add_argument("--config", type=Path, help="use the store of this pipeline config")
    action = cache.add_subparsers(dest="action", required=True)
    action.add_parser("ls", help="list entries, oldest first")
    info = action.add_parser("info", help="index record and provenance of one entry")
    info.add_argument("key")
    clear = action.add_parser("clear", help="remove entries (all, the KEYs given, or the old ones)")
    clear.add_argument("keys", nargs="*")
    clear.add_argument(
        "--older-than", type=parse_duration, help="only entries older than this (30m, 7d...)"
    )
    clear.add_argument("--yes", action="store_true", help="do not ask before clearing everything")
    verify = action.add_parser(
        "verify", help="check every entry (files whole, shape and dtype as recorded)"
    )
    verify.add_argument(
        "--full", action="store_true", help="read every byte and compare with its digest"
    )
    verify.add_argument(
        "--fix", action="store_true", help="remove damaged entries and old leftovers"
    )
    migrate = action.add_parser(
        "migrate", help="re-key a store written by neuralset 0.1 (store format 1)"
    )
    migrate.add_argument("configs", nargs="*", type=Path, help="pipelines whose entries to re-key")
    migrate.add_argument(
        "--finish", action="store_true", help="then remove the legacy entries left; open the store"
    )
    for sub_action in action.choices.values():  # --store also after the action
        sub_action.add_argument(  # SUPPRESS: absent here, the value given before is kept
            "--store", type=Path, default=argparse.SUPPRESS, help="store folder"
        )


def _split_overrides(parser: argparse.ArgumentParser, extra: list[str]) -> list[str]:
    bad = [a for a in extra if not _OVERRIDE.match(a)]
    if bad:
        parser.error(
            f"unrecognized arguments: {' '.join(bad)} (overrides look like --executor.kind=slurm)"
        )
    return extra


def _load(config: Path, overrides: list[str]) -> Any:
    from .pipeline import Pipeline

    if Path(config).is_dir():
        found = sorted(p.name for p in Path(config).glob("*.y*ml"))[:5]
        raise IsADirectoryError(
            f"CONFIG {config} is a folder, not a YAML file; give the pipeline's YAML file"
            + (f" (this folder holds {', '.join(found)})" if found else "")
        )
    return Pipeline.from_yaml(config, overrides)


def _fmt_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _cache_migrate(args: argparse.Namespace, out: Any) -> int:
    from .migration import finish_migration, migrate_store
    from .store import Store

    configs = list(args.configs) or ([args.config] if args.config is not None else [])
    if not configs and not args.finish:
        out(
            "name the pipelines whose entries to re-key: "
            "neuralset cache migrate CONFIG.yaml [...] [--store ROOT] [--finish]"
        )
        return 1
    groups: dict[Path, list[Any]] = {}
    for path in configs:
        pipeline = _load(path, [])
        store = Store(args.store) if args.store is not None else pipeline.open_store()
        groups.setdefault(store.root, []).append(pipeline)
    for root, pipelines in groups.items():
        for i, pipeline in enumerate(pipelines):
            finish = args.finish and i == len(pipelines) - 1
            out(str(migrate_store(Store(root), pipeline, finish=finish)))
    if not configs:
        out(str(finish_migration(Store(args.store))))
    return 0


def _cache(args: argparse.Namespace, out: Any) -> int:
    from .store import Store, StoreError

    if args.action == "migrate":
        return _cache_migrate(args, out)
    if args.config is not None:
        store = _load(args.config, []).open_store()
    else:
        store = Store(args.store)
    if not store.root.is_dir():  # a typo in --store read as an empty store ("all whole")
        where = "--config's store" if args.config is not None else "--store"
        raise StoreError(
            f"no store at {store.root} (no such folder: nothing was stored there); check "
            f"{where} (default: $NEURALSET_CACHE or ~/.cache/neuralset)"
        )
    if args.action == "verify":
        report = store.verify(full=args.full, fix=args.fix)
        out(str(report))
        return 0 if report.ok or args.fix else 1
    if args.action == "ls":
        entries = store.entries()
        now = time.time()
        out(f"{len(entries)} entries in {store.root}")
        for e in entries:
            age = _fmt_age(now - e.created) if e.created else "?"  # a damaged record: unknown
            out(f"{e.key}  {e.kind:6s}  {e.nbytes:>12d} B  {age:>7s}  {e.label}")
        return 0
    if args.action == "info":
        keys = _resolve_keys(store, [args.key], out)
        if keys is None:
            return 1
        try:
            record = store.info(keys[0])
        except StoreError as err:
            out(str(err))
            return 1
        out(json.dumps({"key": keys[0], **record}, indent=2, default=str))
        return 0
    return _cache_clear(store, args, out)


def _resolve_keys(store: Any, given: list[str], out: Any) -> list[str] | None:
    """The entry key each of ``given`` (a key or a unique prefix of one) names; None, having
    said which is unknown or ambiguous, when one names no entry or several."""
    known = list(store.keys())
    keys = []
    for prefix in given:
        found = [k for k in known if k.startswith(prefix)] if prefix else []
        if len(found) != 1:
            what = "no entry" if not found else f"{len(found)} entries"
            out(f"{what} with key {prefix!r} in {store.root}; list them with `neuralset cache ls`")
            return None
        keys.append(found[0])
    return keys


def _cache_clear(store: Any, args: argparse.Namespace, out: Any) -> int:
    """``neuralset cache clear``: the entries named (keys or unique prefixes), else all, or
    the old ones; nothing is removed when a name matches no entry or several."""
    if args.keys and args.older_than is not None:  # was: --older-than silently ignored
        out("give KEYs or --older-than, not both; nothing removed")
        return 1
    if args.keys:
        keys = _resolve_keys(store, args.keys, out)
        if keys is None:
            out("nothing removed")
            return 1
        keys = list(dict.fromkeys(keys))
        for key in keys:
            store.delete(key)
        out(f"removed {len(keys)} entries")
        return 0
    if args.older_than is None and not args.yes:
        out(f"this removes every entry of {store.root}; add --yes to confirm (or --older-than 7d)")
        return 1
    removed = store.clear(older_than=args.older_than)
    out(f"removed {removed} entries")
    return 0


def _kinds(args: argparse.Namespace, out: Any) -> int:
    from .registry import kinds, kinds_table

    if args.markdown:
        out(kinds_table())
        return 0
    infos = kinds()
    widths = [max(len(text) for text in column) for column in zip(*_kind_rows(infos))]
    for row in _kind_rows(infos):
        out("  ".join(f"{text:<{w}}" for text, w in zip(row, widths)).rstrip())
    return 0


def _kind_rows(infos: Sequence[Any]) -> list[tuple[str, str, str, str]]:
    rows = [("KIND", "CLASS", "MODULE", "SUMMARY")]
    return rows + [(i.kind, i.name, i.module, i.summary) for i in infos]


def _fetch(pipeline: Any, args: argparse.Namespace, out: Any) -> int:
    """``neuralset fetch``: the files of the pipeline's events (its segments' when it has some)."""
    from .events.index import UnknownDurationError
    from .pipeline import files_line
    from .studies.fetch import FetchError

    if args.dry_run:  # writes nothing: a synthetic study is described, not written
        events = pipeline.study.preview_events(pipeline.open_store(read_only=True))
    else:
        events = pipeline.study.events()
    for transform in pipeline.transforms:
        events = transform(events)
    selection: Any = events
    if pipeline.segmenter is not None:
        try:
            selection = pipeline.segmenter(events)
        except UnknownDurationError:
            out("segments need the recordings' durations: fetching the files of all the events")
    out(files_line(selection))
    if args.dry_run:
        return 0
    try:
        report = pipeline.study.fetch(
            selection, source=args.source, progress=not args.no_progress, jobs=args.jobs
        )
    except FetchError as err:
        out(str(err))
        return 1
    out(str(report))
    return 0


def _prepare(pipeline: Any, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    """``neuralset prepare``: every extractor of the pipeline; 1 when some items failed."""
    from .execution import PrepareError, prepare_options

    status = 0
    store = pipeline.open_store()
    events = pipeline.events(store)
    for name, extractor in pipeline.extractors.items():
        try:
            with prepare_options(retry=args.retry):
                report = extractor.prepare(
                    events, store, executor=pipeline.executor, progress=not args.no_progress
                )
        except PrepareError as err:
            status = 1
            out(f"{name}: {err.report}")
            out(err.report.describe_failures())
            out(
                "fix the cause, then run `neuralset prepare` again (--retry: only the failed items)"
            )
            continue
        out(f"{name}: {report}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neuralset``; returns the exit code."""
    try:
        status = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (neuralset cache ls | head): no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return int(demo_main(argv[1:]) or 0)
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    out = print
    from .config import ConfigError
    from .entities import EntityError
    from .execution import ExecutorError
    from .store import StoreError, StoreFormatError
    from .studies.bids_files import BidsError
    from .studies.fetch.errors import FetchError

    try:
        if args.command == "kinds":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            return _kinds(args, out)
        if args.command == "cache":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            return _cache(args, out)
        if args.command == "mirror":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            from .studies.fetch.mirror import mirror_metadata

            out(str(mirror_metadata(args.url, args.dest, listing=args.listing, jobs=args.jobs)))
            return 0
        overrides = _split_overrides(parser, extra)
        pipeline = _load(args.config, overrides)
        if args.command == "inspect":
            out(pipeline.inspect(max_keys=args.keys))
            return 0
        if args.command == "fetch":
            return _fetch(pipeline, args, out)
        return _prepare(pipeline, args, out)
    except (
        ConfigError,
        EntityError,
        ExecutorError,
        BidsError,
        FetchError,
        FileNotFoundError,
        IsADirectoryError,
        StoreError,
        StoreFormatError,
    ) as err:
        print(f"neuralset: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
