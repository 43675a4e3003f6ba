import pandas as pd
import pytest

from neuralset.config import ConfigError, config
from neuralset.store import Store
from neuralset.studies import Study


@config
class TinyStudy(Study):
    n: int = 2

    def timelines(self) -> list[str]:
        return [f"run-{i}" for i in range(self.n)]

    def timeline_events(self, timeline: str) -> pd.DataFrame:
        return pd.DataFrame(
            [
                dict(
                    type="Meg",
                    start=0.0,
                    duration=10.0,
                    timeline=timeline,
                    filepath=f"{timeline}.fif",
                ),
                dict(type="Word", start=1.0, duration=0.2, timeline=timeline, text="hello"),
            ]
        )


def test_missing_folder_fails_at_construction(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"TinyStudy.path: folder .*nope does not exist; point it at the dataset root",
    ):
        TinyStudy(path=tmp_path / "nope")


def test_events_validated_with_study_root(tmp_path):
    events = TinyStudy(path=tmp_path).events()
    assert len(events) == 4 and list(events.timeline.cat.categories) == ["run-0", "run-1"]
    assert set(events.study_root) == {str(tmp_path.resolve())}


def test_events_cached_under_key_including_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store = Store(tmp_path / "store")
    a, b = TinyStudy(path=tmp_path / "a"), TinyStudy(path=tmp_path / "b")
    assert a.key != b.key  # the data path is part of the study key
    ev_a = a.events(store)
    assert len(store.entries()) == 1
    pd.testing.assert_frame_equal(a.events(store), ev_a)  # served from the store
    assert len(store.entries()) == 1
    b.events(store)
    assert len(store.entries()) == 2
    assert TinyStudy(path=tmp_path / "a", n=3).key != a.key
