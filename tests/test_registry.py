"""One registry derived from the classes: kinds, discovery, YAML round trips of every config."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import neuralset
import neuralset.extractors
from neuralset.config import (
    Config,
    ConfigError,
    config,
    from_dict,
    from_yaml,
    kind_of,
    polymorphic_kinds,
    register,
    registered,
    to_yaml,
)
from neuralset.extractors.base import Extractor
from neuralset.registry import config_classes, kinds

ROOT = Path(__file__).resolve().parents[1]

#: Constructor arguments of the public configs that need some (the SET of classes is
#: discovered by walking the package; a class missing here is built with no argument).
#: Non-default values where cheap, so the round trip has something to carry.
ARGS: dict[str, dict[str, Any]] = {
    "SyntheticStudy": {"path": "/data/synthetic", "n_subjects": 3, "modalities": ["meg", "audio"]},
    "BidsStudy": {"path": "{bids}", "subjects": ["01"], "stimulus_columns": {"word": "Word"}},
    "RecordingsStudy": {
        "path": "{bids}",
        "files": ["**/*.edf"],
        "annotations": {"T1": {"type": "Action", "code": 1}},
        "stim_channel": "auto",
    },
    "MoabbStudy": {"path": "/data/moabb", "dataset": "BNCI2014_001", "subjects": [1, 2]},
    "EventMap": {"type": "Word", "fields": {"language": "en"}},
    "Query": {"query": "type in ['Meg', 'Word']"},
    "ChunkEvents": {"event_type": "Meg", "max_duration": 30.0},
    "AssignSplits": {"by": "subject", "seed": 3},
    "Chain": {"steps": [{"kind": "query", "query": "type == 'Word'"}]},
    "TriggerSegmenter": {"triggers": "Word", "offset": -0.2, "duration": 0.8, "require": ["Meg"]},
    "SlidingSegmenter": {"duration": 2.0, "stride": 1.0},
    "MegExtractor": {"frequency": 100.0, "filter": [0.5, 40.0], "baseline": [-0.2, 0.0]},
    "EegExtractor": {"frequency": 50, "reference": "average"},
    "MegSourceExtractor": {
        "frequency": 100.0,
        "noise_cov": {"source": "empty_room"},
        "head_model": "bem",
        "parcels": True,
    },
    "EegSourceExtractor": {"noise_cov": {"span": [0.0, 0.9]}, "method": "eLORETA"},
    "NoiseCovariance": {"span": [0.0, 0.5], "method": "shrunk"},
    "LabelEncoder": {"event_type": "Word", "field": "text"},
    "EventField": {"event_type": "Stimulus", "field": "code"},
    "Pulse": {"event_type": "Word", "frequency": 100.0},
    "HuggingFaceText": {"model": "gpt2", "layers": 0.5, "frequency": 10.0},
    "HuggingFaceAudio": {"model": "facebook/wav2vec2-base", "layers": [0.5, 1.0]},
    "HuggingFaceImage": {"model": "facebook/dinov2-small", "output": "static"},
    "HuggingFaceVideo": {"model": "MCG-NJU/videomae-base"},
    "WordLength": {"frequency": 50.0},
    "WindowLabel": {"event_type": "SleepStage", "rule": "any", "classes": ["W", "N1"]},
    "DetectionTarget": {"event_type": "Seizure", "frequency": 100.0, "mode": "onset"},
    "KFoldSplits": {"by": "subject", "n_folds": 4, "stratify": "diagnosis"},
    "SklearnSplits": {"splitter": "StratifiedGroupKFold", "params": {"n_splits": 5}},
    "StimulusSplits": {"similarity_threshold": 0.9, "ratios": [0.9, 0.1], "names": ["a", "b"]},
    "SplitChunks": {"event_type": "Eeg", "max_duration": 60.0},
    "SentencesFromWords": {"max_gap": 1.5},
    "AlignTranscript": {"context_words": 20, "scope": "sentence"},
    "TranscriptWords": {"tier": "phones"},
    "AlignRepetitions": {"stimulus": "filepath", "max_gap": None},
    "StimulusTime": {"event_types": ["Word", "Phoneme"]},
    "AddColumn": {"name": "stop", "expression": "start + duration"},
    "SelectRows": {"indices": [0, 2, -1]},
    "AudioFromVideo": {"folder": "/tmp/audio", "frequency": 16000},
    "Aggregate": {"extractor": {"kind": "meg", "frequency": 100.0}, "how": "max"},
    "ToStatic": {"extractor": {"kind": "pulse", "event_type": "Word", "frequency": 10.0}},
    "Crop": {"extractor": {"kind": "meg", "frequency": 100.0}, "start": 0.1, "duration": 0.2},
    "Concat": {
        "extractors": [
            {"kind": "word_length", "output": "static"},
            {"kind": "event_field", "event_type": "Word", "field": "code"},
        ]
    },
    "PCA": {"extractor": {"kind": "meg", "frequency": 100.0}, "n_components": 4, "fit_on": "train"},
    "HrfConvolve": {
        "extractor": {"kind": "word_length", "output": "static", "aggregation": "trigger"},
        "frequency": 0.5,
        "hrf": "spm + derivative",
    },
    "ChannelPositions": {"extractor": {"kind": "eeg", "frequency": 100.0}, "frame": "head"},
    "EcgExtractor": {"signal": "heart_rate", "frequency": 10.0},
    "SentenceEmbedding": {"model": "sentence-transformers/all-MiniLM-L6-v2", "normalize": True},
    "BagOfWords": {"fit_on": "train", "max_features": 50},
    "FmriExtractor": {"projection": "surface", "mesh": "fsaverage6"},
    "SlurmExecutor": {"partition": "gpu", "timeout_min": 30},
    "LocalExecutor": {"workers": 3},
    "Pipeline": {
        "study": {"kind": "synthetic", "path": "/data/synthetic"},
        "transforms": [{"kind": "query", "query": "type in ['Meg', 'Word']"}],
        "segmenter": {"kind": "trigger", "triggers": "Word", "duration": 0.5},
        "extractors": {
            "meg": {"kind": "meg", "frequency": 100.0},
            "word": {"kind": "label_encoder", "event_type": "Word", "field": "text"},
            "emb": {"kind": "hf_text", "model": "gpt2"},
        },
        "executor": {"kind": "local", "workers": 2},
        "store": "/tmp/store",
    },
}


def _bids_root(tmp: Path) -> Path:
    root = tmp / "bids"
    (root / "sub-01").mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    return root


def _instances(tmp: Path) -> dict[str, Config]:
    """One instance of every public config class that has a kind (the discovered set)."""
    bids = _bids_root(tmp)
    out: dict[str, Config] = {}
    for cls in config_classes():
        if not kind_of(cls):
            continue
        args = json.loads(json.dumps(ARGS.get(cls.__name__, {})).replace("{bids}", str(bids)))
        out[cls.__name__] = from_dict(args, cls)
    return out


def test_every_public_config_has_a_kind_or_is_a_base() -> None:
    classes = config_classes()
    assert len(classes) >= 40
    lacking = [
        f"{c.__module__}.{c.__qualname__}"
        for c in classes
        if not kind_of(c) and not polymorphic_kinds(c)
    ]
    assert lacking == [], "register these with @register('kind') (or subclass them)"
    # the bases are exactly the public classes without a kind, and each has registered subclasses
    bases = sorted(c.__name__ for c in classes if not kind_of(c))
    assert {"Extractor", "Study", "Transform", "Segmenter", "Executor"} <= set(bases)
    assert not [n for n in ARGS if n not in {c.__name__ for c in classes}], "stale ARGS entries"


def test_round_trip_in_a_fresh_process(tmp_path: Path) -> None:
    instances = _instances(tmp_path)
    assert len(instances) >= 35
    texts = {name: to_yaml(cfg) for name, cfg in instances.items()}
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    code = textwrap.dedent(
        """
        import json, pickle, sys
        from neuralset.config import from_yaml
        texts = json.load(open(sys.argv[1]))
        out = {}
        for name, text in texts.items():
            cfg = from_yaml(text)
            out[name] = (cfg, cfg.key, getattr(cfg, "prepare_key", None), cfg.to_yaml())
        pickle.dump(out, open(sys.argv[2], "wb"))
        """
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "texts.json"), str(tmp_path / "back.pkl")],
        check=True,
        cwd=tmp_path,
    )
    with open(tmp_path / "back.pkl", "rb") as fh:
        back = pickle.load(fh)
    assert sorted(back) == sorted(instances)
    for name, cfg in instances.items():
        again, key, prepare_key, text = back[name]
        assert type(again) is type(cfg), name
        assert again == cfg, name
        assert key == cfg.key, name
        if isinstance(cfg, Extractor):
            assert prepare_key == cfg.prepare_key, name
        assert text == texts[name], name
        assert from_yaml(text) == cfg, name


def test_every_registered_class_is_a_public_name() -> None:
    ours = {k: c for k, c in registered().items() if c.__module__.startswith("neuralset.")}
    assert len(ours) >= 35
    for kind, cls in ours.items():
        assert getattr(neuralset, cls.__name__, None) is cls, (
            f"kind {kind!r}: add {cls.__name__} to neuralset/__init__.py _LAZY"
        )
        if issubclass(cls, Extractor) and not cls.__module__.startswith("neuralset.synthetic"):
            assert getattr(neuralset.extractors, cls.__name__) is cls, cls.__name__


def test_kinds_are_unique_snake_case_and_listed() -> None:
    infos = kinds()
    assert len({i.kind for i in infos}) == len(infos)
    by_kind = {i.kind: i for i in infos}
    for kind in ("hf_text", "hf_audio", "hf_image", "hf_video", "mel_spectrogram"):
        assert by_kind[kind].family == "Extractor"
    for kind in ("speech_envelope", "word_length", "word_frequency", "image_statistics"):
        assert by_kind[kind].family == "Extractor"
    for kind in ("pulse", "event_field", "label_encoder"):
        assert by_kind[kind].family == "Extractor"
    assert by_kind["synthetic"].family == "Study" and by_kind["slurm"].family == "Executor"
    assert by_kind["chain"].summary.startswith("Transforms applied in order")
    assert by_kind["meg"].module == "neuralset.extractors.neural.mne.meeg"


def test_resolving_a_kind_in_a_fresh_process_imports_no_heavy_library() -> None:
    code = (
        "import sys\nfrom neuralset.config import from_yaml\n"
        "cfg = from_yaml('kind: event_field\\nevent_type: Stimulus\\nfield: code\\n')\n"
        "print(type(cfg).__name__, sorted(m for m in ('torch', 'jax', 'mne', 'nilearn', "
        "'transformers', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "EventField []"


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        from_yaml("kind: megg\nfrequency: 1.0\n")
    message = str(info.value)
    assert message.startswith("unknown kind 'megg'; known kinds: ")
    assert "hf_text, " in message and "meg, " in message and "label_encoder, " in message


def test_an_entry_without_kind_is_an_error_naming_its_path() -> None:
    from neuralset.pipeline import Pipeline

    data = {
        "study": {"kind": "synthetic", "path": "/data/x"},
        "extractors": {"meg": {"frequency": 100.0}},
    }
    with pytest.raises(ConfigError) as info:
        from_dict(data, Pipeline)
    allowed = ", ".join(polymorphic_kinds(Extractor))
    assert str(info.value) == (
        f"extractors.meg: missing 'kind'; an Extractor entry names its class with one of: {allowed}"
    )
    assert "meg, " in allowed and "hf_text" in allowed and "noop" in allowed
    with pytest.raises(ConfigError, match=r"^study: missing 'kind'; a Study entry names its class"):
        from_dict({"study": {"path": "/data/x"}}, Pipeline)
    with pytest.raises(ConfigError, match=r"^segmenter: missing 'kind'; a Segmenter entry"):
        from_dict({"study": {"kind": "synthetic", "path": "/x"}, "segmenter": {}}, Pipeline)
    with pytest.raises(
        ConfigError,
        match=r"^extractors.x: kind 'trigger' is not an Extractor; expected one of: aggregate, bag_of_words, ",
    ):
        from_dict(
            {
                "study": {"kind": "synthetic", "path": "/x"},
                "extractors": {"x": {"kind": "trigger"}},
            },
            Pipeline,
        )


def test_an_unregistered_class_in_a_polymorphic_place_does_not_write_yaml() -> None:
    from neuralset.pipeline import Pipeline
    from neuralset.synthetic import SyntheticStudy
    from neuralset.synthetic.debug_extractors import NoopExtractor

    @config
    class MyNoop(NoopExtractor):
        """A user subclass without a kind: it must not read back as its parent."""

    assert kind_of(MyNoop) == "" and MyNoop.kind == ""
    assert "kind" not in MyNoop(event_type="Word").to_dict()
    pipe = Pipeline(study=SyntheticStudy(path="/x"), extractors={"n": MyNoop(event_type="Word")})
    with pytest.raises(ConfigError) as info:
        pipe.to_yaml()
    assert str(info.value) == (
        f"Pipeline.extractors.n: {MyNoop.__module__}.{MyNoop.__qualname__} has no kind, so its "
        "YAML would not read back; declare one with @register('my_kind') above @config"
    )
    # and its key is not its parent's
    assert MyNoop(event_type="Word").key != NoopExtractor(event_type="Word").key


def test_register_rules() -> None:
    @config
    class A(Config):
        x: int = 0

    with pytest.raises(ValueError, match=r"^register: kind 'Bad-Kind' must be snake_case"):
        register("Bad-Kind", A)
    with pytest.raises(ValueError, match=r"^register: kind 'meg' is already the kind of "):
        register("meg", A)
    register("test_registry_a", A)
    assert from_yaml("kind: test_registry_a\nx: 3\n") == A(x=3)
    with pytest.raises(ValueError, match=r"already has kind 'test_registry_a'; a class has one"):
        register("test_registry_b", A)
    with pytest.raises(TypeError, match=r"declare the YAML kind with @register\('b'\) above"):

        @config
        class B(Config):
            kind = "b"  # type: ignore[misc]


def test_kinds_command_and_generated_page(capsys: pytest.CaptureFixture[str]) -> None:
    from neuralset.cli import main

    assert main(["kinds"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KIND", "CLASS", "MODULE", "SUMMARY"]
    row = next(line for line in lines if line.startswith("hf_text "))
    assert row.split()[:3] == ["hf_text", "HuggingFaceText", "neuralset.extractors.stimulus.text"]
    assert len(lines) == len(kinds()) + 1
    page = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_kinds_page.py"), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert page.returncode == 0, page.stdout


def test_entry_point_kinds_of_an_installed_package(tmp_path: Path) -> None:
    """A plug-in declares its module in the ``neuralset.kinds`` group: its kinds resolve."""
    site = tmp_path / "site"
    (site / "nsplugin").mkdir(parents=True)
    (site / "nsplugin" / "__init__.py").write_text("")
    (site / "nsplugin" / "configs.py").write_text(
        "from neuralset.config import Config, config, register\n\n"
        "@register('plugin_thing')\n@config\nclass Thing(Config):\n    size: int = 1\n"
    )
    info = site / "nsplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nsplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[neuralset.kinds]\nnsplugin = nsplugin.configs\n")
    code = (
        "from neuralset.config import from_yaml\n"
        "from neuralset.registry import kinds\n"
        "cfg = from_yaml('kind: plugin_thing\\nsize: 4\\n')\n"
        "print(type(cfg).__module__, cfg.size, 'plugin_thing' in {i.kind for i in kinds()})"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "nsplugin.configs 4 True"


def test_config_classes_are_discovered_not_listed() -> None:
    names = {c.__name__ for c in config_classes()}
    # a few from every package walked, including the ones the 0.1 hand lists missed
    for name in ("BidsStudy", "ChunkEvents", "SlidingSegmenter", "Pulse", "EventField"):
        assert name in names
    for name in ("ImageStatistics", "SleepExtractor", "AutoExecutor", "Pipeline"):
        assert name in names
    assert not any(n.startswith("_") for n in names)
    assert all(dataclasses.is_dataclass(c) for c in config_classes())
