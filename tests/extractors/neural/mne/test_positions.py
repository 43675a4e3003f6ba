"""ChannelPositions against MNE's info, montage and device-to-head transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.events import validate_events
from neuralset.extractors.events import Pulse
from neuralset.extractors.neural.mne import EegExtractor, MegExtractor
from neuralset.extractors.neural.mne.positions import ChannelPositions
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

KIT = Path("/work/shared/data/mne-testing-files/kit/test_bin_raw.fif")


def test_eeg_positions_are_the_montage(small_events, tmp_path):
    import mne

    store = Store(tmp_path)
    eeg = EegExtractor(frequency=100.0)
    pos = ChannelPositions(extractor=eeg)
    report = pos.prepare(small_events, store, progress=False)
    assert report.computed == 2 * 2  # 2 recordings + their positions
    segs = segment_on_triggers(small_events, "Word", duration=0.5).require("Eeg")
    got = pos.read(segs, store).data
    names = eeg.output_channels(segs.select([0]), store)
    assert got.shape == (len(segs), len(names), 3)
    path = small_events.loc[small_events["type"] == "Eeg", "filepath"].iloc[0]
    raw = mne.io.read_raw(Path(small_events["study_root"].iloc[0]) / path, verbose="error")
    montage = raw.get_montage().get_positions()["ch_pos"]
    first = np.flatnonzero(segs.timeline == segs.timeline[0])[0]
    np.testing.assert_allclose(got[first], np.stack([montage[n] for n in names]), rtol=1e-6)
    # inner MEG prepared alone is not prepared again; the wrapper's key follows the inner's
    assert pos.prepare(small_events, store, progress=False).computed == 0
    assert pos.prepare_key != ChannelPositions(extractor=eeg.replace(drop_bads=True)).prepare_key
    back = from_dict(pos.to_dict())
    assert back == pos and back.to_dict()["kind"] == "channel_positions"


def test_meg_head_frame_and_missing_positions(small_events, tmp_path):
    import mne

    if not KIT.exists():
        pytest.skip(f"{KIT} (MNE test data) is not on this machine")
    events = validate_events(
        pd.DataFrame(
            [
                dict(
                    type="Meg",
                    start=0.0,
                    duration=2.0,
                    timeline="k",
                    filepath=str(KIT),
                    frequency=1000.0,
                ),
                dict(type="Word", start=0.5, duration=0.2, timeline="k", text="w"),
            ]
        )
    )
    store = Store(tmp_path)
    meg = MegExtractor(frequency=100.0, picks=("mag",))
    native = ChannelPositions(extractor=meg)
    head = ChannelPositions(extractor=meg, frame="head")
    for ex in (native, head):
        ex.prepare(events, store, progress=False)
    segs = segment_on_triggers(events, "Word", duration=0.5)
    raw = mne.io.read_raw(KIT, verbose="error").pick("mag")
    locs = np.array([c["loc"][:3] for c in raw.info["chs"]])
    np.testing.assert_allclose(native.read(segs, store).data[0], locs, rtol=1e-6)
    in_head = mne.transforms.apply_trans(raw.info["dev_head_t"], locs)
    np.testing.assert_allclose(head.read(segs, store).data[0], in_head, rtol=1e-5, atol=1e-7)
    # the stim channel has no position (its loc is garbage, 7e15 m): an error naming it, or NaN
    stim = MegExtractor(frequency=100.0, picks=("mag", "stim"))
    with_stim = ChannelPositions(extractor=stim)
    with_stim.prepare(events, store, progress=False)
    with pytest.raises(
        ValueError,
        match=r"ChannelPositions: channel\(s\) STI 014 of recording row 0 have no position",
    ):
        with_stim.read(segs, store)
    nan = with_stim.replace(missing="nan").read(segs, store).data[0]
    assert np.isnan(nan[-1]).all() and np.isfinite(nan[:-1]).all()


def test_config_errors():
    with pytest.raises(
        ConfigError, match=r"^ChannelPositions.extractor: an MNE recording extractor"
    ):
        ChannelPositions(extractor=Pulse(event_type="Word", frequency=10.0))
