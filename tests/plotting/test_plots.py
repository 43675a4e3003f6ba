"""Pictures: each function returns a Figure with the expected axes, labels and plotted values."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.events import LabelEncoder
from neuralset.loaders import SegmentDataset
from neuralset.plotting import (
    average_by,
    overlap_matrix,
    plot_average,
    plot_batch,
    plot_events,
    plot_overlap,
    plot_study,
    study_table,
)
from neuralset.plotting.signals import _mark_onsets
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

PNG = b"\x89PNG\r\n\x1a\n"


def png_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bids_like() -> pd.DataFrame:
    rows = []
    for sub in ("01", "02", "03"):
        for ses in ("1", "2"):
            if sub == "03" and ses == "2":
                continue  # a missing session
            tl = f"sub-{sub}_ses-{ses}_run-1"
            dur = 60.0 * (1 + int(sub))
            rows.append(
                dict(
                    type="Meg",
                    start=0.0,
                    duration=dur,
                    timeline=tl,
                    filepath=f"{tl}.fif",
                    frequency=1000.0,
                )
            )
            for t in np.arange(1.0, dur - 1, 0.5):
                rows.append(dict(type="Word", start=t, duration=0.3, timeline=tl, text="w"))
                rows.append(dict(type="Stimulus", start=t, duration=0.1, timeline=tl, code=1))
            rows.append(dict(type="Sentence", start=1.0, duration=10.0, timeline=tl, text="s"))
    return validate_events(pd.DataFrame(rows))


def test_plot_events_rows_panels_and_summary_view(bids_like: pd.DataFrame) -> None:
    fig = plot_events(bids_like, max_timelines=2, max_events=200)
    axes = fig.axes
    assert len(axes) == 2
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [
        "Meg",
        "Sentence",
        "Stimulus",
        "Word",
    ]
    assert axes[0].get_ylabel() == "sub-01_ses-1_run-1"
    assert axes[0].get_title().startswith(f"events: {len(bids_like):,} in 2 of 5 timelines")
    assert axes[-1].get_xlabel() == "time on the timeline (s)"
    # 236 words per timeline > 200: the Word and Stimulus rows are density strips
    assert len(axes[0].images) == 2
    assert any("(density)" in t.get_text() for t in axes[0].texts)
    detailed = plot_events(bids_like, timelines=["sub-03_ses-1_run-1"], span=(0.0, 20.0))
    assert len(detailed.axes) == 1 and not detailed.axes[0].images
    assert detailed.axes[0].get_xlim() == (0.0, 20.0)
    assert png_bytes(fig)[:8] == PNG
    with pytest.raises(ValueError, match="plot_events: no timeline 'sub-09'"):
        plot_events(bids_like, timelines=["sub-09"])


def test_plot_study_grid_from_bids_names(bids_like: pd.DataFrame) -> None:
    table = study_table(bids_like)
    assert table["subject"].tolist() == ["01", "01", "02", "02", "03"]
    assert table["session"].tolist() == ["1", "2", "1", "2", "1"]
    assert table["duration"].tolist() == [120.0, 120.0, 180.0, 180.0, 240.0]
    fig = plot_study(bids_like, count="Word")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["01", "02", "03"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ses-1 run-1", "ses-2 run-1"]
    texts = [t.get_text() for t in ax.texts]
    assert "2.0 min\n236 Word" in texts and len(texts) == 5  # the missing session has no label
    assert ax.get_title() == "study: 3 subjects, 5 timelines, 0.23 h recorded"
    assert fig.axes[1].get_ylabel() == "recorded minutes"
    assert png_bytes(fig)[:8] == PNG


def test_plot_overlap_values(bids_like: pd.DataFrame) -> None:
    matrix = overlap_matrix(bids_like)
    assert matrix.loc["Word", "Meg"] == 1.0 and matrix.loc["Meg", "Word"] == 1.0
    assert matrix.loc["Word", "Stimulus"] == 1.0
    # 20 of the ~236 words of each timeline lie in its 10 s sentence
    expected = (bids_like["type"] == "Word") & (bids_like["start"] < 11.0)
    assert matrix.loc["Word", "Sentence"] == pytest.approx(
        expected.sum() / (bids_like["type"] == "Word").sum()
    )
    assert matrix.loc["Word", "Word"] == 0.0  # words of 0.3 s every 0.5 s: none overlap another
    fig = plot_overlap(bids_like)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Meg", "Sentence", "Stimulus", "Word"]
    assert ax.get_xlabel() == "overlaps an event of type" and ax.get_ylabel() == "events of type"
    assert len(ax.texts) == 16


@pytest.fixture(scope="module")
def ramp_dataset(tmp_path_factory: pytest.TempPathFactory) -> SegmentDataset:
    from tests.loaders.conftest import SFREQ, RampExtractor, make_events

    root = tmp_path_factory.mktemp("plots")
    events = make_events(root, n_timelines=2, duration=12.0)
    kinds = np.where(np.arange(len(events)) % 3 == 0, "face", "house")
    events = events.assign(description=np.where(events["type"] == "Word", kinds, None))
    segments = segment_on_triggers(events, "Word", offset=-0.1, duration=0.4)
    segments = segments.select(segments.covering("Meg") >= 0)
    ds = SegmentDataset(
        segments,
        {
            "meg": RampExtractor(frequency=SFREQ),
            "label": LabelEncoder(event_type="Word", field="description"),
        },
        Store(root / "store"),
    )
    ds.prepare(progress=False)
    return ds


def test_plot_batch_axes_times_and_labels(ramp_dataset: SegmentDataset) -> None:
    batch = ramp_dataset.__getitems__([4, 5])
    fig = plot_batch(batch, "meg", index=1, ch_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "time from the trigger (s)"
    np.testing.assert_allclose(ax.lines[0].get_xdata(), batch.times["meg"].numpy())
    assert ax.get_title() == (
        f"meg: segment 5 (timeline {int(batch.timeline[1])}, start {float(batch.start[1]):.2f} s); "
        f"label={int(batch['label'][1])}"
    )
    # the drawn trace is the channel scaled to its range, stacked at its offset
    x = batch["meg"][1, 0].numpy()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 0.45 * x / np.abs(x).max() + 2, rtol=1e-6)
    assert ax.lines[-1].get_xdata()[0] == 0.0  # the trigger line
    same = plot_batch(ramp_dataset.read([4, 5]), index=1)  # a plain read works too
    assert [t.get_text() for t in same.axes[0].get_yticklabels()] == ["ch 0", "ch 1", "ch 2"]
    assert png_bytes(fig)[:8] == PNG


def test_plot_average_lines_and_bands_equal_numpy(ramp_dataset: SegmentDataset) -> None:
    everything = ramp_dataset.read(np.arange(len(ramp_dataset)))
    data = everything["data"]["meg"].astype(np.float64)
    labels = everything["data"]["label"]
    fig = plot_average(ramp_dataset, by="label", channels=[1], batch_size=7)
    ax = fig.axes[0]
    assert ax.get_title() == "ch 1"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"face (n={(labels == 0).sum()})", f"house (n={(labels == 1).sum()})"]
    for k in (0, 1):
        np.testing.assert_allclose(
            ax.lines[k].get_ydata(), data[labels == k, 1].mean(axis=0), rtol=1e-9
        )
    sem = data[labels == 0, 1].std(axis=0, ddof=1) / np.sqrt((labels == 0).sum())
    band = pd.DataFrame(ax.collections[0].get_paths()[0].vertices, columns=["t", "y"])
    upper = band.groupby("t")["y"].max().to_numpy()  # the band's upper edge at each time
    top = data[labels == 0, 1].mean(axis=0) + 1.959963984540054 * sem
    np.testing.assert_allclose(upper, top, rtol=1e-9)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), -0.1 + np.arange(20) / 50.0)
    assert fig._suptitle.get_text().startswith("average meg per class, 95% confidence band")
    by_column = average_by(ramp_dataset, "description", "meg")
    assert by_column["classes"] == ["face", "house"]
    np.testing.assert_allclose(by_column["mean"][1], data[labels == 1].mean(axis=0))
    overall = plot_average(ramp_dataset, by=None, max_channels=3, mark="Word")
    assert len([a for a in overall.axes if a.get_visible()]) == 3
    assert [t.get_text() for t in overall.axes[0].get_legend().get_texts()][0].startswith(
        "all segments (n="
    )
    assert not overall.axes[0].patches  # 0.4 s windows, words every 0.5 s: no neighbour inside
    longer = SegmentDataset(
        segment_on_triggers(
            ramp_dataset.segments.events, "Word", offset=-0.1, duration=1.2
        ).require("Meg"),
        {"meg": ramp_dataset.extractors["meg"]},
        ramp_dataset.store,
        out_of_bounds="drop",
    )
    # the neighbouring words start 0.5 and 1.0 s after each trigger
    assert sorted(set(np.round(_mark_onsets(longer, "Word"), 6).tolist())) == [0.5, 1.0]
    marked = plot_average(longer, by=None, channels=[0], mark="Word")
    assert len(marked.axes[0].patches) > 0
    assert "Word onsets" in [t.get_text() for t in marked.axes[0].get_legend().get_texts()]
    with pytest.raises(ValueError, match="plot_average.by: 'nope' is neither a field"):
        plot_average(ramp_dataset, by="nope")
    assert png_bytes(overall)[:8] == PNG


def test_bad_plot_arguments_name_the_argument(ramp_dataset: SegmentDataset) -> None:
    """Were numpy's IndexError, list.index's "'x' is not in list" and statistics'
    "p must be in the range 0.0 < p < 1.0"."""
    batch = ramp_dataset.read([0, 1])
    with pytest.raises(IndexError) as info:
        plot_batch(batch, "meg", index=2)
    assert str(info.value) == "plot_batch.index: the batch has 2 segments (0 to 1), got 2"
    with pytest.raises(ValueError) as info:
        plot_average(ramp_dataset, by=None, confidence=95)
    assert str(info.value) == (
        "plot_average.confidence: the band's coverage, between 0 and 1 (0.95 for a 95% band), "
        "got 95"
    )
    for channels, shown in ((["ch 1", "ch 9"], "'ch 9'"), ([3], "3"), ([-1], "-1")):
        with pytest.raises(ValueError) as info:
            plot_average(ramp_dataset, by=None, channels=channels)
        assert str(info.value) == (
            f"plot_average.channels: no channel {shown} among the 3 of 'meg'; "
            "give names (ch 0, ch 1, ch 2) or positions 0 to 2"
        )
