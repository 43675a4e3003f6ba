"""Pipeline configs: YAML round trip, errors naming their path, dotted overrides, inspect."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuralset.config import ConfigError
from neuralset.execution import InlineExecutor, LocalExecutor, SlurmExecutor
from neuralset.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


def write_config(folder: Path, **changes: object) -> Path:
    """A small synthetic pipeline YAML in ``folder`` (relative study and store paths)."""
    data: dict = {
        "study": {
            "kind": "synthetic",
            "path": "data",
            "n_subjects": 2,
            "duration": 10.0,
            "meg_channels": 6,
            "modalities": ["meg"],
        },
        "transforms": [{"kind": "query", "query": "type in ['Meg', 'Word']"}],
        "segmenter": {
            "kind": "trigger",
            "triggers": "Word",
            "offset": -0.1,
            "duration": 0.5,
            "require": ["Meg"],
        },
        "extractors": {"meg": {"kind": "meg", "frequency": 50.0, "filter": [0.5, 20.0]}},
        "executor": {"kind": "inline"},
        "store": "cache",
    }
    data.update(changes)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose study files and events are already written (shared, read-only use)."""
    folder = tmp_path_factory.mktemp("pipeline")
    path = write_config(folder)
    Pipeline.from_yaml(path).events()
    return path


def test_example_config_round_trips_through_yaml(tmp_path: Path) -> None:
    pipeline = Pipeline.from_yaml(REPO / "examples" / "synthetic.yaml")
    assert pipeline.study.path == (REPO / "examples" / "synthetic-data")
    assert isinstance(pipeline.executor, InlineExecutor) and pipeline.segmenter is not None
    assert type(pipeline.extractors["meg"]).__name__ == "MegExtractor"
    assert pipeline.extractors["meg"].filter == (0.5, 40.0)
    text = pipeline.to_yaml()
    (tmp_path / "again.yaml").write_text(text)
    again = Pipeline.from_yaml(tmp_path / "again.yaml")
    assert again == pipeline and again.key == pipeline.key
    assert yaml.safe_load(text)["extractors"]["meg"]["kind"] == "meg"


def test_executor_settings_round_trip(tmp_path: Path) -> None:
    slurm = {"kind": "slurm", "partition": "gpu", "timeout_min": 90, "mem_gb": 16, "gpus_per_node": 1,
             "array_parallelism": 8, "sbatch": {"qos": "high"}, "setup": ["module load cuda"], "max_jobs": 20}  # fmt: skip
    path = write_config(tmp_path, executor=slurm)
    pipeline = Pipeline.from_yaml(path)
    assert pipeline.executor == SlurmExecutor(
        partition="gpu", timeout_min=90.0, mem_gb=16.0, gpus_per_node=1, array_parallelism=8,
        sbatch={"qos": "high"}, setup=("module load cuda",), max_jobs=20,
    )  # fmt: skip
    (tmp_path / "b.yaml").write_text(pipeline.to_yaml())
    assert Pipeline.from_yaml(tmp_path / "b.yaml") == pipeline
    auto = Pipeline.from_yaml(
        write_config(tmp_path, executor={"kind": "auto", "local": {"workers": 2}})
    )
    assert auto.executor.local == LocalExecutor(workers=2)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"extractors": {"meg": {"kind": "meg", "filter": ["abc", 40.0]}}},
         r"^extractors.meg.filter\[0\]: expected float \| None, got 'abc'$"),
        ({"extractors": {"meg": {"kind": "meg", "frequencyy": 100}}},
         r"^extractors.meg.frequencyy: unknown key for MegExtractor \(did you mean 'frequency'\?\); allowed keys: .*frequency"),
        ({"extractors": {"meg": {"kind": "megg"}}},
         r"^extractors.meg: unknown kind 'megg' \(did you mean 'meg'\?\); an Extractor entry names "
         r"its class with one of: aggregate, bag_of_words, .*, meg, meg_source, .*, word_length$"),
        ({"executor": {"kind": "slrum"}},
         r"^executor: unknown kind 'slrum' \(did you mean 'slurm'\?\); an Executor entry names "
         r"its class with one of: auto, inline, local, slurm$"),
        ({"extractors": {"meg": {"kind": "meg", "frequency": -1}}},
         r"^extractors.meg: MegExtractor.frequency: must be > 0 Hz \(or None\), got -1.0$"),
        ({"extractors": {"meg": {"kind": "trigger", "triggers": "Word"}}},
         r"^extractors.meg: kind 'trigger' is not an Extractor; expected one of: "),
        ({"executor": {"kind": "local", "workers": "two"}}, r"^executor.workers: expected int \| None, got 'two'$"),
        ({"executor": {"kind": "slurm", "timeout_min": 0}},
         r"^executor: SlurmExecutor.timeout_min: must be > 0 minutes, got 0.0$"),
        ({"transforms": [{"kind": "query"}]}, r"^transforms\[0\].query: missing; Query requires it \(str\); add `query:` to the entry$"),
        ({"segmenter": {"kind": "trigger", "triggers": "Word", "duration": "long"}},
         r"^segmenter.duration: expected float \| None, got 'long'$"),
        ({"study": {"kind": "synthetic"}},
         r"^study.path: missing; SyntheticStudy requires it \(Path\); add `path:` to the entry$"),
        ({"extra": 1}, r"^extra: unknown key for Pipeline; allowed keys: executor, extractors, segmenter, store, study, transforms$"),
    ],
)  # fmt: skip
def test_errors_name_the_path(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Pipeline.from_yaml(write_config(tmp_path, **changes))


def test_a_pipeline_without_study_names_it(tmp_path: Path) -> None:
    """Was ``Pipeline: Pipeline.__init__() missing 1 required keyword-only argument: 'study'``."""
    (tmp_path / "p.yaml").write_text("extractors: {}\n")
    with pytest.raises(ConfigError) as info:
        Pipeline.from_yaml(tmp_path / "p.yaml")
    assert (
        str(info.value) == "study: missing; Pipeline requires it (Study); add `study:` to the entry"
    )


def test_dotted_overrides(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    base = Pipeline.from_yaml(path)
    changed = Pipeline.from_yaml(
        path, ["--executor.kind=slurm", "--executor.partition=gpu", "--executor.timeout_min=5"]
    )
    assert changed.executor == SlurmExecutor(partition="gpu", timeout_min=5.0)
    assert changed.pipeline_key == base.pipeline_key  # how to run is not what to compute
    freq = Pipeline.from_yaml(
        path, ["--extractors.meg.frequency=120", "--transforms.0.query=type == 'Meg'"]
    )
    assert freq.extractors["meg"].frequency == 120.0 and freq.transforms[0].query == "type == 'Meg'"  # type: ignore[attr-defined]
    assert freq.pipeline_key != base.pipeline_key
    with pytest.raises(
        ConfigError, match=r"^extractors.meg.frequency: expected float \| None, got 'fast'$"
    ):
        Pipeline.from_yaml(path, ["--extractors.meg.frequency=fast"])
    with pytest.raises(
        ConfigError, match=r"override 'executor.kind': expected --dotted.path=value"
    ):
        Pipeline.from_yaml(path, ["executor.kind"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--transforms.3.query=x", "transforms is a list of 1; index it with 0 to 0, got '3'"),
        ("--transforms.first.query=x", "transforms is a list of 1; index it with 0 to 0, got 'first'"),
        ("--segmenter.require.0.x=1", "segmenter.require.0 is 'Meg', not a mapping or list"),
        ("--segmenter.offset.start=1", "segmenter.offset is -0.1, not a mapping or list"),
    ],
)  # fmt: skip
def test_bad_overrides_name_the_path(tmp_path: Path, override: str, message: str) -> None:
    """Was a bare IndexError / ValueError / TypeError from inside ``apply_overrides``."""
    with pytest.raises(ConfigError) as info:
        Pipeline.from_yaml(write_config(tmp_path), [override])
    assert str(info.value) == f"override {override!r}: {message}"
    empty = write_config(tmp_path, transforms=[])
    with pytest.raises(ConfigError) as info:
        Pipeline.from_yaml(empty, ["--transforms.0.query=x"])
    assert str(info.value).endswith("transforms is a list of 0; set it whole, got '0'")


def test_every_relative_path_is_resolved_from_the_yaml_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only ``store`` and ``study.path``: any ``Path`` field, nested in any entry."""
    folder = tmp_path / "configs"
    (folder / "masks").mkdir(parents=True)
    (folder / "masks" / "brain.nii.gz").write_bytes(b"")
    inner = {"kind": "fmri", "mask": "masks/brain.nii.gz"}
    wrapped = {"kind": "pca", "extractor": inner, "fit_on": "all"}
    path = write_config(
        folder,
        extractors={"bold": {"kind": "fmri", "mask": "./masks/brain.nii.gz"}, "pca": wrapped},
        executor={"kind": "slurm", "folder": "logs"},
    )
    monkeypatch.chdir(tmp_path)  # the YAML is in ./configs: its paths must not depend on this
    pipeline = Pipeline.from_yaml(path)
    mask = folder.resolve() / "masks" / "brain.nii.gz"
    assert pipeline.extractors["bold"].mask == mask  # type: ignore[attr-defined]
    assert pipeline.extractors["pca"].extractor.mask == mask  # type: ignore[attr-defined]
    assert pipeline.executor.folder == folder.resolve() / "logs"  # type: ignore[attr-defined]
    assert pipeline.study.path == folder.resolve() / "data"
    assert pipeline.store == folder.resolve() / "cache"
    # a relative path given on the command line is the user's: from the current folder
    moved = Pipeline.from_yaml(path, ["--store=here", "--executor.folder=~/logs"])
    assert moved.store == tmp_path.resolve() / "here"
    assert moved.executor.folder == Path("~/logs").expanduser().resolve()  # type: ignore[attr-defined]
    assert moved.study.path == pipeline.study.path


def test_inspect_reads_no_signal_and_reports_sizes(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mne

    pipeline = Pipeline.from_yaml(built)
    events = pipeline.events()
    segments = pipeline.segments(events)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("inspect read a signal")

    with monkeypatch.context() as patch:
        for name in ("read_raw_fif", "read_raw"):
            patch.setattr(mne.io, name, forbidden)
        text = pipeline.inspect()
    words = (
        events[events["type"] == "Word"]
        .groupby(events["timeline"].astype(str), observed=True)
        .size()
    )
    assert f"events: {len(events)} in 2 timelines" in text
    table = text.split("\n")[3:6]
    assert table[0].split() == ["type", "Meg", "Word"]
    assert table[2].split() == ["sub-01", "1", str(words["sub-01"])]
    assert f"segments: {len(segments)} (TriggerSegmenter)" in text
    extractor = pipeline.extractors["meg"]
    keys = [i.key for i in extractor.items(events)]
    assert f"key {extractor.prepare_key}, 2 items, 0 stored (0 B), 2 missing" in text
    assert all(f"missing {k}" in text for k in keys)
    estimate = float(text.split("expected store size: ")[1].split(" kB")[0]) * 1000
    # prepare for real: the estimate from file sizes (headers, extra channels) was close
    report = pipeline.prepare(progress=False)["meg"]
    assert report.computed == 2
    after = pipeline.inspect()
    stored = sum(pipeline.open_store().info(k)["nbytes"] for k in keys)
    assert abs(estimate - stored) / stored < 0.25, (estimate, stored)
    assert (
        "2 stored" in after and "0 missing" in after and all(f"stored  {k}" in after for k in keys)
    )
