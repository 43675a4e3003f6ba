"""Splits without leakage: K-fold by group, scikit-learn splitters, stimulus-aware splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, dump_yaml, from_dict, load_yaml
from neuralset.events import validate_events
from neuralset.events.splits import KFoldSplits, LeakageError, SklearnSplits, deal_groups
from neuralset.events.stimulus_splits import StimulusSplits, stimulus_groups


def subjects_table(n_subjects: int = 23, seed: int = 0) -> pd.DataFrame:
    """Per subject: a recording, 3-12 words, and a diagnosis (the stratum)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        tl = f"sub-{s:02d}"
        diagnosis = "patient" if s % 3 == 0 else "control"
        rows.append(
            dict(
                type="Meg",
                start=0.0,
                duration=10.0,
                timeline=tl,
                filepath=f"{tl}.fif",
                subject=tl,
                diagnosis=diagnosis,
            )
        )
        for k in range(int(rng.integers(3, 13))):
            rows.append(
                dict(
                    type="Word",
                    start=0.5 * k,
                    duration=0.3,
                    timeline=tl,
                    text=f"w{k}",
                    subject=tl,
                    diagnosis=diagnosis,
                )
            )
    return validate_events(pd.DataFrame(rows))


def test_kfold_groups_never_cross_and_folds_balance() -> None:
    events = subjects_table()
    before = events.copy()
    folds = {}
    for test_fold in range(5):
        out = KFoldSplits(
            by="subject", n_folds=5, test_fold=test_fold, val_fold=(test_fold + 1) % 5
        )(events)
        assert out.groupby("subject", observed=True)["split"].nunique().max() == 1
        assert out.groupby("subject", observed=True)["fold"].nunique().max() == 1
        folds[test_fold] = out
    pd.testing.assert_frame_equal(events, before)  # pure
    fold = folds[0].groupby("subject", observed=True)["fold"].first()
    sizes = np.bincount(fold, minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 23
    # every subject is in the test split of exactly one of the 5 runs
    tested = sum(
        (f.groupby("subject", observed=True)["split"].first() == "test").astype(int)
        for f in folds.values()
    )
    assert (tested == 1).all()
    counts = folds[2]["split"].value_counts()
    assert set(counts.index) == {"train", "val", "test"}


def test_kfold_is_seeded_order_independent_and_stable_when_rows_are_added() -> None:
    events = subjects_table()
    split = KFoldSplits(by="subject", n_folds=4, seed=3)
    base = split(events).groupby("subject", observed=True)["fold"].first()
    shuffled = validate_events(events.sample(frac=1.0, random_state=1))
    pd.testing.assert_series_equal(
        split(shuffled).groupby("subject", observed=True)["fold"].first(), base
    )
    other = (
        KFoldSplits(by="subject", n_folds=4, seed=4)(events)
        .groupby("subject", observed=True)["fold"]
        .first()
    )
    assert (other != base).any()
    # more words for existing subjects: no subject moves
    extra = events[events["type"] == "Word"].assign(start=lambda d: d["start"] + 100.0)
    grown = validate_events(pd.concat([events, extra], ignore_index=True))
    pd.testing.assert_series_equal(
        split(grown).groupby("subject", observed=True)["fold"].first(), base
    )
    # method="hash": new subjects do not move the old ones either
    hashed = KFoldSplits(by="subject", n_folds=4, seed=3, method="hash")
    old = hashed(events).groupby("subject", observed=True)["fold"].first()
    more = validate_events(
        pd.concat([events, subjects_table(40, seed=9)[lambda d: d["subject"] >= "sub-23"]])
    )
    new = hashed(more).groupby("subject", observed=True)["fold"].first()
    pd.testing.assert_series_equal(new.loc[old.index], old)


def test_stratified_kfold_balances_each_stratum() -> None:
    events = subjects_table(30)
    out = KFoldSplits(by="subject", n_folds=5, stratify="diagnosis")(events)
    per = out.groupby("subject", observed=True)[["fold", "diagnosis"]].first()
    table = pd.crosstab(per["fold"], per["diagnosis"])
    assert table.shape == (5, 2)
    assert (table.max() - table.min()).max() <= 1  # 10 patients and 20 controls: 2 and 4 per fold
    assert table["patient"].tolist() == [2] * 5 and table["control"].tolist() == [4] * 5


def test_kfold_rows_weight_and_errors() -> None:
    events = subjects_table(40)
    out = KFoldSplits(by="subject", n_folds=4, weight="rows")(events)
    rows = out[out["fold"] >= 0].groupby("fold").size()
    assert rows.max() / rows.min() < 1.25
    with pytest.raises(ConfigError, match=r"KFoldSplits.test_fold: must be in \[0, 2\], got 3"):
        KFoldSplits(n_folds=3, test_fold=3)
    with pytest.raises(
        ConfigError, match="KFoldSplits.stratify: stratified folds need method='balanced'"
    ):
        KFoldSplits(stratify="diagnosis", method="hash")
    with pytest.raises(ConfigError, match="KFoldSplits.by: no column 'site' in the events"):
        KFoldSplits(by="site")(events)
    # more folds than groups: the test fold had no group, silently
    three = events[events["subject"].isin(events["subject"].unique()[:3])]
    with pytest.raises(ConfigError) as err:
        KFoldSplits(by="subject", n_folds=5, test_fold=1)(three)
    assert str(err.value) == (
        "KFoldSplits.test_fold: fold 1 gets no group: 3 'subject' groups for 5 folds "
        "(method='balanced'); use n_folds <= 3"
    )


def test_deal_groups_hash_spread_matches_the_ratios() -> None:
    names = np.array([f"g{i}" for i in range(20_000)], dtype=object)
    which = deal_groups(names, np.array([0.7, 0.2, 0.1]), seed=0, method="hash")
    frac = np.bincount(which, minlength=3) / len(names)
    # binomial spread: 4 standard deviations
    assert np.all(np.abs(frac - [0.7, 0.2, 0.1]) < 4 * np.sqrt(0.7 * 0.3 / 20_000))
    balanced = deal_groups(names[:101], np.array([0.7, 0.2, 0.1]), seed=0)
    assert np.all(np.abs(np.bincount(balanced) - np.array([70.7, 20.2, 10.1])) <= 1)


def test_sklearn_group_kfold_equals_sklearn_and_covers_each_group() -> None:
    from sklearn.model_selection import GroupKFold

    events = subjects_table()
    words = events["type"] == "Word"
    out = SklearnSplits(
        splitter="GroupKFold", params={"n_splits": 4}, by="subject", fold=2, rows="type == 'Word'"
    )(events)
    # reference: scikit-learn's own split of the word rows
    groups = events.loc[words, "subject"].astype(str).to_numpy()
    _, test = list(GroupKFold(n_splits=4).split(np.zeros((len(groups), 1)), None, groups))[2]
    expected = np.full(len(groups), "train", dtype=object)
    expected[test] = "test"
    np.testing.assert_array_equal(out.loc[words, "split"].astype(str).to_numpy(), expected)
    # the recording rows take their subject's split
    per = out.groupby("subject", observed=True)["split"].nunique()
    assert per.max() == 1
    # rows must be a condition: "start" (numbers) was cast to True/False
    with pytest.raises(
        ConfigError, match="^SklearnSplits.rows: the event query 'start' gives float64"
    ):
        SklearnSplits(params={"n_splits": 4}, by="subject", rows="start")(events)


def test_sklearn_stratified_group_kfold_with_seed_and_val() -> None:
    events = subjects_table(30)
    split = SklearnSplits(
        splitter="StratifiedGroupKFold",
        params={"n_splits": 5},
        by="subject",
        stratify="diagnosis",
        fold=0,
        val_fold=1,
        seed=7,
    )
    out = split(events)
    assert split.make_splitter().random_state == 7 and split.make_splitter().shuffle
    assert out.groupby("subject", observed=True)["split"].nunique().max() == 1
    assert set(out["split"]) == {"train", "val", "test"}
    assert split(events)["split"].equals(out["split"])  # seeded: the same again


def test_sklearn_stratify_with_missing_labels_is_an_error_naming_the_rows() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Word",
                "start": np.arange(12.0),
                "duration": 0.3,
                "timeline": "r",
                "text": "a",
                "subject": [f"s{i // 2}" for i in range(12)],
                "diagnosis": ["x", "x", None, None] + ["y", "y", "x", "x"] * 2,
            }
        )
    )
    split = SklearnSplits(
        splitter="StratifiedGroupKFold", params={"n_splits": 2}, by="subject", stratify="diagnosis"
    )
    with pytest.raises(ConfigError) as err:
        split(events)
    assert str(err.value) == (
        "SklearnSplits.stratify: 2 of 12 selected rows have no 'diagnosis' value (rows [2, 3]); "
        'fill them, or leave them out with rows="diagnosis.notna()"'
    )
    out = dataclasses.replace(split, rows="diagnosis.notna()")(events)  # the fix given works
    assert out["split"].tolist()[2:4] == ["", ""]
    assert out.groupby("subject")["split"].nunique().max() == 1


def test_sklearn_rows_in_neither_train_nor_test_are_left_out() -> None:
    from sklearn.model_selection import GroupShuffleSplit

    events = validate_events(
        pd.DataFrame(
            {
                "type": "Word",
                "start": np.arange(20.0),
                "duration": 0.3,
                "timeline": "r",
                "text": "a",
                "subject": [f"s{i // 2}" for i in range(20)],
            }
        )
    )
    params = {"n_splits": 1, "test_size": 0.2, "train_size": 0.5, "random_state": 0}
    out = SklearnSplits(splitter="GroupShuffleSplit", params=params, by="subject")(events)
    train, test = next(GroupShuffleSplit(**params).split(np.zeros(20), groups=events["subject"]))
    expected = np.full(20, "", dtype=object)
    expected[train], expected[test] = "train", "test"
    assert out["split"].astype(str).tolist() == expected.tolist()  # were all "train"
    assert out["split"].value_counts().to_dict() == {"train": 10, "": 6, "test": 4}


def test_sklearn_splitter_without_groups_is_a_leak() -> None:
    events = subjects_table()
    split = SklearnSplits(
        splitter="KFold", params={"n_splits": 3}, by="subject", rows="type == 'Word'"
    )
    with (
        pytest.raises(LeakageError) as err,
        pytest.warns(UserWarning, match="groups parameter is ignored"),
    ):
        split(events)
    assert str(err.value) == (
        "'subject' groups in two splits: 1 of 23 (e.g. 'sub-09'); split by that group "
        "(a Group* splitter) so that each stays in one split"
    )
    with pytest.warns(UserWarning, match="groups parameter is ignored"):
        rows = split.replace(check_groups=False)(events)
    assert set(rows.loc[rows["type"] == "Meg", "split"]) == {""}  # only the sampled rows
    with pytest.raises(ConfigError, match="SklearnSplits.splitter: no splitter 'GroupKFoldz'"):
        SklearnSplits(splitter="GroupKFoldz")(events)
    with pytest.raises(ConfigError, match="SklearnSplits.params: .*unexpected keyword"):
        SklearnSplits(params={"n_folds": 3})(events)
    with pytest.raises(
        ConfigError, match="SklearnSplits.fold: GroupKFold gives fewer than 9 splits"
    ):
        SklearnSplits(params={"n_splits": 3}, by="subject", fold=8)(events)


# -- stimulus-aware splits -------------------------------------------------------------------

POOL = [
    f"sentence number {i} about the {w}" for i, w in enumerate(["cat", "dog", "sun", "sea"] * 30)
]


def presentations(seed: int = 0, n_subjects: int = 6, per_subject: int = 40) -> pd.DataFrame:
    """Subjects hear sentences drawn with repeats from a pool; the text varies in case and
    punctuation between presentations; each sentence comes with its words and an audio file."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        tl = f"sub-{s}"
        t = 0.0
        for k in rng.choice(len(POOL), per_subject):
            text = POOL[k]
            shown = text.capitalize() + "." if rng.random() < 0.5 else text.upper()
            words = shown.split()
            rows.append(
                dict(type="Sentence", start=t, duration=0.3 * len(words), timeline=tl, text=shown)
            )
            rows.append(
                dict(
                    type="Audio",
                    start=t,
                    duration=0.3 * len(words),
                    timeline=tl,
                    filepath=f"stim/s{k}.wav",
                )
            )
            for j, w in enumerate(words):
                rows.append(
                    dict(
                        type="Word",
                        start=t + 0.3 * j,
                        duration=0.25,
                        timeline=tl,
                        text=w,
                        sentence=shown,
                    )
                )
            t += 0.3 * len(words) + 1.0
        rows.append(dict(type="Meg", start=0.0, duration=t, timeline=tl, filepath=f"{tl}.fif"))
    return validate_events(pd.DataFrame(rows))


def test_no_stimulus_in_two_splits_and_ratios_within_tolerance() -> None:
    events = presentations()
    out = StimulusSplits(ratios=(0.6, 0.2, 0.2), keys={"Word": "sentence", "Sentence": "text"})(
        events
    )
    sentences = out[out["type"] == "Sentence"]
    key = sentences["text"].str.lower().str.rstrip(".")
    assert sentences.groupby(key)["split"].nunique().max() == 1  # repeated: one split
    words = out[out["type"] == "Word"]
    assert (
        words.groupby(words["sentence"].str.lower().str.rstrip("."))["split"].nunique().max() == 1
    )
    # ratios over distinct stimuli: balanced to within one stimulus
    per = sentences.groupby(key)["split"].first().value_counts()
    n = len(key.unique())
    for name, ratio in zip(("train", "val", "test"), (0.6, 0.2, 0.2)):
        assert abs(per[name] - ratio * n) <= 1.0, (name, per[name], ratio * n)
    assert set(out.loc[out["type"] == "Meg", "split"]) == {""}
    assert (out.loc[out["type"] == "Meg", "stimulus_group"] == -1).all()


def test_audio_files_and_sentences_keep_their_own_groups_consistently() -> None:
    events = presentations(seed=1)
    out = StimulusSplits(ratios=(0.5, 0.5), names=("train", "test"))(events)
    audio = out[out["type"] == "Audio"]
    assert audio.groupby("filepath", observed=False)["split"].nunique().max() == 1


def test_one_stimulus_written_in_two_unicode_forms_is_one_group() -> None:
    import unicodedata

    nfc = "Le café noir.wav"
    nfd = unicodedata.normalize("NFD", nfc)  # as macOS writes file names
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Audio",
                "start": [0.0, 0.0, 5.0, 5.0],
                "duration": 2.0,
                "timeline": ["s1", "s2", "s1", "s2"],
                "filepath": [nfc, nfd, "Un chien.wav", "UN CHIEN.wav"],
            }
        )
    )
    codes, names = stimulus_groups(events, {"Audio": "filepath"})
    assert codes.tolist() == [0, 0, 1, 1]
    assert names.tolist() == ["le café noir.wav", "un chien.wav"]
    out = StimulusSplits(ratios=(0.5, 0.5), names=("train", "test"))(events)
    assert out.groupby("stimulus_group")["split"].nunique().tolist() == [1, 1]


def test_near_duplicates_by_text_similarity_are_merged() -> None:
    base = ["the quick brown fox jumps over the lazy dog", "a completely different sentence here"]
    variants = [
        "the quick brown fox jumped over the lazy dog",
        "a completely different sentence there",
    ]
    unrelated = [f"unrelated words {i} {i * 7} {i * 13}" for i in range(30)]
    texts = base + variants + unrelated
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Sentence",
                "start": np.arange(len(texts), dtype=float),
                "duration": 0.5,
                "timeline": "r",
                "text": texts,
            }
        )
    )
    exact, names = stimulus_groups(events, {"Sentence": "text"})
    assert len(names) == len(texts)
    merged, merged_names = stimulus_groups(events, {"Sentence": "text"}, threshold=0.8)
    assert merged[0] == merged[2] and merged[1] == merged[3]
    assert len(merged_names) == len(texts) - 2
    out = StimulusSplits(
        keys={"Sentence": "text"}, similarity_threshold=0.8, ratios=(0.5, 0.5), names=("a", "b")
    )(events)
    assert (
        out["split"].iloc[0] == out["split"].iloc[2]
        and out["split"].iloc[1] == out["split"].iloc[3]
    )


def test_near_duplicates_by_embedding_column() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 16))
    vectors = [centres[i // 3] + 0.01 * rng.standard_normal(16) for i in range(30)]  # 10 triples
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Image",
                "start": np.arange(30, dtype=float),
                "duration": 1.0,
                "timeline": "r",
                "filepath": [f"img{i}.png" for i in range(30)],
            }
        )
    ).assign(embedding=vectors)
    codes, names = stimulus_groups(
        events, {"Image": "filepath"}, threshold=0.99, feature="embedding"
    )
    assert len(names) == 10
    assert all(len(set(codes[3 * k : 3 * k + 3])) == 1 for k in range(10))
    with pytest.raises(ConfigError, match="StimulusSplits.similarity_feature: no column 'emb'"):
        StimulusSplits(
            keys={"Image": "filepath"}, similarity_threshold=0.9, similarity_feature="emb"
        )(events)


def test_stimulus_split_configs_round_trip_and_errors(tmp_path) -> None:
    for cfg in (
        StimulusSplits(similarity_threshold=0.9, ratios=(0.9, 0.1), names=("train", "test")),
        SklearnSplits(splitter="StratifiedGroupKFold", params={"n_splits": 5}, stratify="y"),
        KFoldSplits(by="subject", n_folds=3, val_fold=1, stratify="diagnosis"),
    ):
        path = tmp_path / "c.yaml"
        path.write_text(dump_yaml(cfg))
        back = from_dict(load_yaml(path))
        assert back == cfg and back.key == cfg.key
    with pytest.raises(ConfigError, match=r"StimulusSplits.ratios: 2 ratios for 3 names"):
        StimulusSplits(ratios=(0.5, 0.5))
    with pytest.raises(
        ConfigError, match=r"StimulusSplits.similarity_threshold: must be in \(0, 1\]"
    ):
        StimulusSplits(similarity_threshold=1.5)
    no_stim = subjects_table(3)
    with pytest.raises(ConfigError, match="StimulusSplits.keys: no event has a stimulus identity"):
        StimulusSplits(keys={"Sentence": "text"})(no_stim)


def test_stimulus_split_left_without_a_stimulus_is_an_error() -> None:
    sentences = validate_events(
        pd.DataFrame(
            {
                "type": "Sentence",
                "start": [0.0, 5.0],
                "duration": 2.0,
                "timeline": "run-1",
                "text": ["The cat sat.", "A dog barked."],
            }
        )
    )
    with pytest.raises(
        ConfigError, match=r"^StimulusSplits.ratios: splits? '\w+'(, '\w+')? gets? no"
    ):
        StimulusSplits(keys={"Sentence": "text"})(sentences)  # 2 stimuli for 0.8/0.1/0.1
    out = StimulusSplits(keys={"Sentence": "text"}, ratios=(0.5, 0.5), names=("train", "test"))(
        sentences
    )
    assert sorted(out["split"]) == ["test", "train"]
