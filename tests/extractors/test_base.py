"""The extractor interface: abstract methods, typed hooks, and how the other layers read them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from neuralset import segment_on_triggers, validate_events
from neuralset.config import ConfigError, config
from neuralset.execution import InlineExecutor, run_prepare
from neuralset.extractors.base import Extractor, Item, default_layout
from neuralset.extractors.event_features import EventFeatureExtractor
from neuralset.extractors.events import LabelEncoder
from neuralset.extractors.neural.mne.meeg import MegExtractor
from neuralset.extractors.recording import RecordingExtractor
from neuralset.loaders import SegmentDataset
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import NoopExtractor
from tests.loaders.conftest import SFREQ, RampExtractor, make_events

ASKED: list[int] = []
ITEMS_CALLS: list[int] = []


@config
class _AskingExecutor(InlineExecutor):
    """The inline executor, noting what the driver asks of it."""

    def with_resources(self, *, gpus: int = 0) -> _AskingExecutor:
        ASKED.append(gpus)
        return super().with_resources(gpus=gpus)


@config
class _GpuNoop(NoopExtractor):
    @property
    def requires_gpu(self) -> bool:
        return True


@config
class _CountingRamp(RampExtractor):
    def items(self, events: pd.DataFrame) -> list[Item]:
        ITEMS_CALLS.append(len(events))
        return super().items(events)


@config
class _Wide(RampExtractor):
    def batch_layout(self, name: str) -> str:
        return f"Float batch {name}_channels {name}_time"


def stimuli(n: int = 5) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame({"type": "Stimulus", "start": np.arange(float(n)), "timeline": "t"})
    )


def test_the_interface_is_abstract() -> None:
    with pytest.raises(
        TypeError, match="abstract class Extractor with abstract methods items, read"
    ):
        Extractor()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="abstract class RecordingExtractor with abstract method compute_recording"):  # fmt: skip
        RecordingExtractor()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="abstract class EventFeatureExtractor with abstract method items"):  # fmt: skip
        EventFeatureExtractor()  # type: ignore[abstract]

    @config
    class Half(Extractor):
        def items(self, events: pd.DataFrame) -> list[Item]:
            return []

    with pytest.raises(TypeError, match="abstract class Half with abstract method read"):
        Half()  # type: ignore[abstract]


def test_hooks_have_typed_defaults() -> None:
    meg = MegExtractor(frequency=100.0)
    assert meg.requires_gpu is False
    assert meg.output_dtype == np.dtype(np.float32)
    assert meg.batch_layout("meg") == "Float batch *meg_features meg_time"
    assert meg.replace(output="static").batch_layout("m") == "Float batch *m_features"
    labels = LabelEncoder(event_type="Word", field="text")
    assert labels.output_dtype == np.dtype(np.int64)
    assert labels.batch_layout("label") == "Int batch *label_features"
    assert default_layout("x", "dynamic", "Int") == "Int batch *x_features x_time"


def test_hooks_read_by_datasets_and_plots(tmp_path: Path) -> None:
    from neuralset.extractors.events import WindowLabel

    meg = MegExtractor(frequency=100.0)
    events = stimuli()
    segments = segment_on_triggers(events, "Stimulus", duration=0.5)
    store = Store(tmp_path / "s")
    noop = NoopExtractor()
    assert noop.needs_event_in_every_segment is True and noop.check_segments(segments) is None
    assert noop.output_channels(segments, store) is None
    assert noop.vocabulary(events, store) is None
    stages = WindowLabel(event_type="Stimulus", field="code", classes=("1", "2"))
    assert stages.needs_event_in_every_segment is False
    assert stages.output_dtype == np.dtype(np.int64)
    assert stages.batch_layout("stage") == "Int batch *stage_features"
    hot = stages.replace(encoding="one_hot")
    assert hot.output_dtype == np.dtype(np.float32)
    assert hot.batch_layout("stage") == "Float batch *stage_features"
    assert stages.vocabulary(events, store) == ("1", "2")
    assert meg.needs_event_in_every_segment is True


def test_hf_extractors_on_cuda_require_a_gpu() -> None:
    from neuralset.extractors.stimulus.text import HuggingFaceText

    assert HuggingFaceText(model="gpt2", device="cuda").requires_gpu is True
    assert HuggingFaceText(model="gpt2", device="cpu").requires_gpu is False
    assert HuggingFaceText(model="gpt2", device="auto").requires_gpu is False


def test_the_driver_asks_the_executor_for_the_extractor_resources(tmp_path: Path) -> None:
    events = stimuli()
    ASKED.clear()
    report = run_prepare(
        _GpuNoop(), events, Store(tmp_path / "a"), executor=_AskingExecutor(), progress=False
    )
    assert ASKED == [1] and report.computed == 5
    run_prepare(
        NoopExtractor(), events, Store(tmp_path / "b"), executor=_AskingExecutor(), progress=False
    )
    assert ASKED == [1, 0]


def test_noop_extractor_reads_what_it_stored(tmp_path: Path) -> None:
    events = stimuli()
    store = Store(tmp_path / "s")
    noop = NoopExtractor()
    segments = segment_on_triggers(events, "Stimulus", duration=0.5)
    from neuralset.extractors.base import ExtractorNotPreparedError

    with pytest.raises(ExtractorNotPreparedError, match=r"no stored value for t@0; call prepare"):
        noop.read(segments, store)
    noop.prepare(events, store, progress=False)
    assert noop.read(segments, store).data.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert noop.batch_layout("noop") == "Float batch *noop_features"
    with pytest.raises(ConfigError, match="NoopExtractor.output: it stores one number per event"):
        NoopExtractor(output="dynamic")


def test_the_dataset_uses_the_declared_layout(tmp_path: Path) -> None:
    events = make_events(tmp_path)
    segs = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8).require("Meg")
    segs = segs.select(segs.covering("Meg") >= 0)
    ds = SegmentDataset(segs, {"meg": _Wide(frequency=SFREQ)}, Store(tmp_path / "s"))
    assert ds.layout == {"meg": "Float batch meg_channels meg_time"}
    ds.prepare(progress=False)
    assert tuple(ds.__getitems__([0, 1])["meg"].shape) == (2, 3, 40)


def test_reads_reuse_the_keys_memoised_on_the_event_index(tmp_path: Path) -> None:
    events = make_events(tmp_path, n_timelines=2)
    segs = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8).require("Meg")
    segs = segs.select(segs.covering("Meg") >= 0)
    ramp = _CountingRamp(frequency=SFREQ)
    store = Store(tmp_path / "s")
    ramp.prepare(events, store, progress=False)
    ITEMS_CALLS.clear()
    batches: Sequence[Any] = np.array_split(np.arange(len(segs)), 8)
    first = [ramp.read(segs.select(b), store).data for b in batches]
    assert sum(ITEMS_CALLS) == 2  # one item per recording, the first time it is read
    again = [ramp.read(segs.select(b), store).data for b in batches]
    assert sum(ITEMS_CALLS) == 2
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # another extractor (another prepare_key) has its own table on the same index
    other = _CountingRamp(frequency=SFREQ, content_hash=True)
    other.prepare(events, store, progress=False)
    ITEMS_CALLS.clear()
    other.read(segs.select(batches[0]), store)
    assert sum(ITEMS_CALLS) == 1
