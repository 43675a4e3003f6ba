"""Replay a recording over LSL and stream it through an OnlinePipeline (run by test_lsl.py).

Run inside a network namespace whose only interface is loopback (``isolated_command``), with
liblsl confined to 127.0.0.1 (``configure_loopback``): ``python lsl_replay.py CONFIG.json
OUT.npz``. The config
holds the recording path, the extractor (``to_dict()``), the segmenter's offset and duration,
and the scaling statistics. Writes the windows, their start on the recording's time axis, the
marker values and the received samples' check to OUT.npz.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid

import numpy as np

from neuralset.streaming.lsl import configure_loopback, loopback_up


def main(config_path: str, out_path: str) -> None:
    config = json.loads(open(config_path).read())
    loopback_up()  # the namespace's only interface
    configure_loopback(tempfile.mkdtemp())  # before mne_lsl is imported
    import mne
    from mne_lsl.player import PlayerLSL

    from neuralset.config import from_dict
    from neuralset.segments import TriggerSegmenter
    from neuralset.streaming.lsl import LslMarkers, LslSource
    from neuralset.streaming.online import OnlinePipeline

    raw = mne.io.read_raw_fif(config["path"], preload=True, verbose="error")
    sfreq = raw.info["sfreq"]
    name = f"neuralset-{uuid.uuid4().hex[:8]}"
    player = PlayerLSL(config["path"], chunk_size=20, name=name, n_repeat=1).start()
    try:
        source = LslSource(name, idle=1.5)
        markers = LslMarkers(f"{name}-annotations", shift=1.0 / sfreq, type="Word")
        extractor = from_dict(config["extractor"])
        segmenter = TriggerSegmenter(triggers="Word", **config["segmenter"])
        pipe = OnlinePipeline(
            extractor, source.info, segmenter, scaling=config["scaling"], backend="numpy"
        )
        chunks = []

        def recorded():
            for chunk in source:
                chunks.append(chunk)
                yield chunk

        windows = [w for batch in pipe.run(recorded(), markers) for w in batch]
    finally:
        if player.running:  # it stops by itself at the end of the file
            player.stop()
    data = np.concatenate([c.data for c in chunks], axis=1)
    first = int(round(data[0, 0] * sfreq))  # the RAMP channel holds each sample's time
    expected = raw.get_data()[:, first : first + data.shape[1]]
    t_file0 = chunks[0].timestamps[0] - first / sfreq  # stream time of file sample 0
    np.savez(
        out_path,
        windows=np.stack([w.data for w in windows]),
        starts=np.array([w.start - t_file0 for w in windows]),
        values=np.array([w.value for w in windows]),
        first=first,
        n_samples=data.shape[1],
        samples_equal=np.array_equal(data, expected),
        stamps_regular=np.allclose(
            np.diff(np.concatenate([c.timestamps for c in chunks])), 1 / sfreq
        ),
        latency=np.array(pipe.latencies),
        ch_names=np.array(source.info.ch_names),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
