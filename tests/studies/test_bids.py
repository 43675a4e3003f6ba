"""BidsStudy on datasets written by mne-bids (FIF MEG, BrainVision/EDF EEG, EDF iEEG) and nibabel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.studies.bids import BidsError, BidsStudy, parse_entities

SFREQ = 200.0
N_TIMES = 2000  # whole EDF records: EDF pads a partial last record
TR = 1.5
N_VOL = 12


def _raw(kind: str, seed: int):
    import mne

    rng = np.random.default_rng(seed)
    if kind == "meg":
        info = mne.create_info(["MEG 001", "MEG 002", "MEG 003"], SFREQ, ["mag", "grad", "grad"])
        scale = 1e-12
    elif kind == "ieeg":
        info = mne.create_info(["LA1", "LA2", "LA3"], SFREQ, "seeg")
        scale = 1e-5
    else:
        info = mne.create_info(["Fz", "Cz", "Pz", "Oz"], SFREQ, "eeg")
        scale = 1e-5
    raw = mne.io.RawArray(
        rng.normal(size=(len(info["ch_names"]), N_TIMES)) * scale, info, verbose="error"
    )
    raw.info["line_freq"] = 50.0
    raw.set_annotations(
        mne.Annotations([1.0, 4.0, 7.5], [0.5, 0.5, 0.5], ["word", "image", "word"])
    )
    return raw


def _write(root: Path, kind: str, fmt: str, subject: str, run: str, bads: list[str] = ()) -> Path:
    from mne_bids import BIDSPath, write_raw_bids

    raw = _raw(kind, seed=int(subject) * 10 + int(run))
    raw.info["bads"] = list(bads)
    datatype = {"meg": "meg", "eeg": "eeg", "ieeg": "ieeg"}[kind]
    bp = BIDSPath(subject=subject, session="1", task="read", run=run, datatype=datatype, root=root)
    write_raw_bids(raw, bp, format=fmt, allow_preload=True, overwrite=True, verbose="error")
    # add stimulus columns to the events.tsv mne-bids wrote
    events_tsv = bp.copy().update(suffix="events", extension=".tsv").fpath
    table = pd.read_csv(events_tsv, sep="\t")
    table["word"] = ["cat", "n/a", "dog"]
    table["stim_file"] = ["n/a", "images/house.png", "n/a"]
    table.to_csv(events_tsv, sep="\t", index=False)
    return bp.fpath


def _nifti(path: Path, n_vol: int = N_VOL) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.zeros((4, 5, 6, n_vol), np.float32), np.eye(4))
    img.header.set_zooms((2.0, 2.0, 2.0, TR))
    nib.save(img, path)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bids") / "ds"
    _write(root, "meg", "FIF", "01", "1")
    _write(root, "eeg", "BrainVision", "01", "1", bads=["Cz"])
    _write(root, "eeg", "EDF", "02", "1", bads=["Oz", "Fz"])
    _write(root, "ieeg", "EDF", "02", "2", bads=["LA3"])
    # fMRI: raw run + an fMRIPrep-like derivative with two spaces
    func = root / "sub-03" / "ses-1" / "func"
    base = "sub-03_ses-1_task-read_run-1"
    _nifti(func / f"{base}_bold.nii.gz")
    (func / f"{base}_bold.json").write_text(json.dumps({"RepetitionTime": TR, "TaskName": "read"}))
    pd.DataFrame(
        {
            "onset": [3.0, 9.0],
            "duration": [1.0, 1.0],
            "trial_type": ["word", "word"],
            "word": ["sun", "moon"],
        }
    ).to_csv(func / f"{base}_events.tsv", sep="\t", index=False)
    deriv = root / "derivatives" / "fmriprep" / "sub-03" / "ses-1" / "func"
    for space in ("MNI152NLin2009cAsym", "T1w"):
        _nifti(deriv / f"{base}_space-{space}_desc-preproc_bold.nii.gz")
        (deriv / f"{base}_space-{space}_desc-preproc_bold.json").write_text(
            json.dumps({"RepetitionTime": TR})
        )
    _nifti(deriv / f"{base}_space-T1w_desc-brain_mask.nii.gz")  # not a BOLD run
    deriv2 = root / "derivatives" / "fmriprep2" / "sub-03" / "ses-1" / "func"
    for res in (2, 3):
        _nifti(deriv2 / f"{base}_space-MNI_res-{res}_desc-preproc_bold.nii")
    return root


def test_parse_entities():
    assert parse_entities("sub-01_ses-2_task-a_run-3_space-T1w_desc-preproc_bold.nii.gz") == (
        {"sub": "01", "ses": "2", "task": "a", "run": "3", "space": "T1w", "desc": "preproc"},
        "bold",
        ".nii.gz",
    )


def test_recordings_match_mne_bids(root):
    from mne_bids import BIDSPath, read_raw_bids

    study = BidsStudy(path=root)
    assert study.timelines() == [
        "sub-01_ses-1_task-read_run-1",
        "sub-02_ses-1_task-read_run-1",
        "sub-02_ses-1_task-read_run-2",
        "sub-03_ses-1_task-read_run-1",
    ]
    events = study.events()
    recs = events[events["type"].isin(["Meg", "Eeg", "Ieeg", "Fmri"])]
    assert recs["type"].astype(str).tolist() == ["Eeg", "Meg", "Eeg", "Ieeg", "Fmri"]
    for _, rec in recs[recs["type"] != "Fmri"].iterrows():
        ents, _, _ = parse_entities(Path(rec["filepath"]).name)
        datatype = Path(rec["filepath"]).parent.name
        bp = BIDSPath(
            subject=ents["sub"],
            session="1",
            task="read",
            run=ents["run"],
            datatype=datatype,
            root=root,
        )
        raw = read_raw_bids(bp, verbose="error")  # the reference reader (applies channels.tsv)
        assert rec["frequency"] == raw.info["sfreq"]
        assert rec["duration"] == pytest.approx(raw.n_times / raw.info["sfreq"], abs=1e-9)
        assert sorted(filter(None, rec["bads"].split(","))) == sorted(raw.info["bads"])
        assert (root / rec["filepath"]).is_file()
    assert recs["bads"].fillna("").tolist()[:4] == ["Cz", "", "Fz,Oz", "LA3"]


def test_events_tsv_typed(root):
    events = BidsStudy(path=root, subjects=("01",)).events()
    assert set(events["timeline"]) == {"sub-01_ses-1_task-read_run-1"}
    words = events[events["type"] == "Word"].sort_values("start")
    assert words["text"].tolist() == ["cat", "dog"]
    np.testing.assert_array_equal(words["start"], [1.0, 7.5])
    images = events[events["type"] == "Image"]
    assert images["filepath"].tolist() == ["stimuli/images/house.png"]
    assert images["start"].tolist() == [4.0]
    stim = (
        events[events["type"] == "Stimulus"]
        .drop_duplicates(["start", "description"])
        .sort_values("start")
    )
    assert stim["description"].tolist() == ["word", "image", "word"]
    np.testing.assert_array_equal(stim["duration"], 0.5)
    assert set(events["subject"]) == {"01"} and set(events["run"]) == {"1"}
    mapped = BidsStudy(
        path=root, subjects=("01",), stimulus_columns={"word": "Phoneme"}, trial_event=""
    ).events()
    assert set(mapped["type"].astype(str)) == {"Meg", "Eeg", "Phoneme"}


def test_fmri_derivatives_one_event_per_space(root):
    study = BidsStudy(path=root, datatypes=("func",), fmri_derivatives="derivatives/fmriprep")
    events = study.events()
    fmri = events[events["type"] == "Fmri"].sort_values("space")
    assert fmri["space"].tolist() == ["MNI152NLin2009cAsym", "T1w"]
    assert all("desc-preproc" in p for p in fmri["filepath"])
    np.testing.assert_array_equal(fmri["frequency"], 1 / TR)
    np.testing.assert_array_equal(fmri["duration"], N_VOL * TR)
    assert events.loc[events["type"] == "Word", "text"].tolist() == [
        "sun",
        "moon",
    ]  # raw func events.tsv
    only = BidsStudy(
        path=root, datatypes=("func",), fmri_derivatives="derivatives/fmriprep", spaces=("T1w",)
    )
    assert only.events().query("type == 'Fmri'")["space"].tolist() == ["T1w"]
    two_res = BidsStudy(
        path=root, datatypes=("func",), fmri_derivatives="derivatives/fmriprep2"
    ).events()
    assert sorted(two_res.query("type == 'Fmri'")["space"]) == ["MNI_res-2", "MNI_res-3"]
    raw = BidsStudy(path=root, datatypes=("func",)).events()
    assert raw.query("type == 'Fmri'")["filepath"].tolist() == [
        "sub-03/ses-1/func/sub-03_ses-1_task-read_run-1_bold.nii.gz"
    ]


def test_reads_no_signal(root, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    for data in copy.glob("sub-0[12]/ses-1/*/*.edf"):
        data.write_bytes(b"")  # empty data files: the sidecars are enough
    events = BidsStudy(path=copy, datatypes=("eeg", "ieeg")).events()
    assert (events["type"] == "Ieeg").sum() == 1 and (events["type"] == "Eeg").sum() == 2


def _broken(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("derivatives", "sub-03", "sub-02"))
    return copy


def test_missing_events_file(root, tmp_path):
    copy = _broken(root, tmp_path)
    tsv = copy / "sub-01/ses-1/eeg/sub-01_ses-1_task-read_run-1_events.tsv"
    tsv.unlink()
    with pytest.raises(
        BidsError, match=r"missing events file .*sub-01_ses-1_task-read_run-1_events.tsv"
    ):
        BidsStudy(path=copy, datatypes=("eeg",)).events()
    events = BidsStudy(path=copy, datatypes=("eeg",), require_events=False).events()
    assert events["type"].astype(str).tolist() == ["Eeg"]


def test_unreadable_sidecar_and_missing_frequency(root, tmp_path):
    copy = _broken(root, tmp_path)
    sidecar = copy / "sub-01/ses-1/meg/sub-01_ses-1_task-read_run-1_meg.json"
    sidecar.write_text("{not json")
    with pytest.raises(
        BidsError, match=r"unreadable sidecar .*sub-01_ses-1_task-read_run-1_meg.json"
    ):
        BidsStudy(path=copy, datatypes=("meg",)).events()
    sidecar.write_text(json.dumps({"TaskName": "read"}))
    with pytest.raises(BidsError, match=r"_meg.json: SamplingFrequency missing"):
        BidsStudy(path=copy, datatypes=("meg",)).events()


def test_inconsistent_runs(root, tmp_path):
    copy = _broken(root, tmp_path)
    eeg = copy / "sub-01/ses-1/eeg"
    shutil.copy(
        eeg / "sub-01_ses-1_task-read_run-1_eeg.vhdr", eeg / "sub-01_ses-1_task-read_run-1_eeg.edf"
    )
    with pytest.raises(
        BidsError, match=r"inconsistent run: .*_eeg.edf and .*_eeg.vhdr are two eeg recordings"
    ):
        BidsStudy(path=copy, datatypes=("eeg",)).timelines()
    (eeg / "sub-01_ses-1_task-read_run-1_eeg.edf").unlink()
    tsv = eeg / "sub-01_ses-1_task-read_run-1_events.tsv"
    table = pd.read_csv(tsv, sep="\t")
    table.loc[2, "onset"] = 50.0  # the recording lasts 10 s
    table.to_csv(tsv, sep="\t", index=False)
    with pytest.raises(
        BidsError, match=r"inconsistent run: .*_events.tsv has onsets after the end .* rows \[2\]"
    ):
        BidsStudy(path=copy, datatypes=("eeg",)).events()


def test_unreadable_nifti(root, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(root / "sub-03", copy / "sub-03")
    bold = copy / "sub-03/ses-1/func/sub-03_ses-1_task-read_run-1_bold.nii.gz"
    bold.write_bytes(b"garbage")
    with pytest.raises(BidsError, match=r"unreadable fMRI file .*_bold.nii.gz"):
        BidsStudy(path=copy).events()


def test_config_errors(root, tmp_path):
    with pytest.raises(ConfigError, match=r"BidsStudy.path: folder .*nowhere does not exist"):
        BidsStudy(path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"BidsStudy.datatypes: unknown datatype 'mri'"):
        BidsStudy(path=root, datatypes=("mri",))
    with pytest.raises(
        ConfigError, match=r"BidsStudy.stimulus_columns.word: unknown event type 'Wrd'"
    ):
        BidsStudy(path=root, stimulus_columns={"word": "Wrd"})
    with pytest.raises(
        ConfigError, match=r"BidsStudy.fmri_derivatives: folder .*fmriprp does not exist"
    ):
        BidsStudy(path=root, fmri_derivatives="derivatives/fmriprp")


def test_yaml_kind(root):
    from neuralset.config import from_dict

    study = from_dict({"kind": "bids", "path": str(root), "datatypes": ["meg"]})
    assert isinstance(study, BidsStudy) and study.datatypes == ("meg",)


@pytest.mark.parametrize(
    ("datatype", "suffix", "ext", "etype"),
    [
        ("eeg", "eeg", ".bdf", "Eeg"),
        ("eeg", "eeg", ".set", "Eeg"),
        ("meg", "meg", ".ds", "Meg"),
        ("ieeg", "ieeg", ".vhdr", "Ieeg"),
        ("nirs", "nirs", ".snirf", "Fnirs"),
        ("emg", "emg", ".edf", "Emg"),
    ],
)
def test_datatypes_from_sidecars(tmp_path, datatype, suffix, ext, etype):
    folder = tmp_path / "sub-07" / datatype
    folder.mkdir(parents=True)
    base = "sub-07_task-rest_run-3"
    (folder / f"{base}_{suffix}{ext}").write_bytes(b"")  # never opened
    (folder / f"{base}_{suffix}.json").write_text(json.dumps({"SamplingFrequency": 10.0}))
    # RecordingDuration inherited from a dataset-level sidecar (BIDS inheritance)
    (tmp_path / f"task-rest_{suffix}.json").write_text(
        json.dumps({"RecordingDuration": 99.9, "SamplingFrequency": 1.0})
    )
    events = BidsStudy(path=tmp_path).events()  # task-rest: events.tsv not required
    assert events["type"].astype(str).tolist() == [etype]
    assert events["timeline"].tolist() == ["sub-07_task-rest_run-3"]
    assert events["frequency"].tolist() == [10.0]  # the closer sidecar wins
    assert events["duration"].tolist() == [pytest.approx(100.0)]


def test_fmriprep_runs_through_the_extractor(tmp_path):
    """BidsStudy events of an fMRIPrep folder -> FmriExtractor with confounds, volume and surface."""
    from nilearn import signal
    from nilearn.maskers import NiftiMasker

    from neuralset.extractors.neural.fmri import FmriExtractor
    from neuralset.store import Store

    rng = np.random.default_rng(3)
    root = tmp_path / "ds"
    raw_func = root / "sub-01" / "func"
    raw_func.mkdir(parents=True)
    pd.DataFrame({"onset": [2.0], "duration": [1.0], "trial_type": ["go"]}).to_csv(
        raw_func / "sub-01_task-go_events.tsv", sep="\t", index=False
    )
    deriv = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    deriv.mkdir(parents=True)
    img = nib.Nifti1Image(
        rng.normal(100, 5, size=(6, 7, 8, N_VOL)).astype(np.float32), np.diag([3, 3, 3, 1])
    )
    nib.save(img, deriv / "sub-01_task-go_space-T1w_desc-preproc_bold.nii.gz")
    (deriv / "sub-01_task-go_space-T1w_desc-preproc_bold.json").write_text(
        json.dumps({"RepetitionTime": TR})
    )
    mask = nib.Nifti1Image(np.ones((6, 7, 8), np.uint8), img.affine)
    nib.save(mask, tmp_path / "mask.nii")
    conf = pd.DataFrame({"trans_x": rng.normal(size=N_VOL), "csf": rng.normal(size=N_VOL)})
    conf.to_csv(deriv / "sub-01_task-go_desc-confounds_timeseries.tsv", sep="\t", index=False)
    hemis = {h: rng.normal(size=(N_VOL, 10242)).astype(np.float32) for h in "LR"}  # fsaverage5
    for h, arr in hemis.items():
        gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(v) for v in arr])
        nib.save(
            gii, deriv / f"sub-01_task-go_hemi-{h}_space-fsaverage5_desc-preproc_bold.func.gii"
        )
    (deriv / "sub-01_task-go_space-fsaverage5_desc-preproc_bold.json").write_text(
        json.dumps({"RepetitionTime": TR})
    )

    events = BidsStudy(path=root, fmri_derivatives="derivatives/fmriprep").events()
    fmri = events[events["type"] == "Fmri"].sort_values("space")
    assert fmri["space"].tolist() == ["T1w", "fsaverage5"]
    np.testing.assert_array_equal(fmri["duration"], N_VOL * TR)
    store = Store(tmp_path / "store")

    volume = FmriExtractor(mask=tmp_path / "mask.nii", detrend=True, confounds=("trans_x", "csf"))
    vol_events = events[(events["type"] != "Fmri") | (events["space"] == "T1w")].reset_index(
        drop=True
    )
    volume.prepare(vol_events, store, progress=False)
    ours = store.get_arrays(volume.items(vol_events)[0].key)["data"]
    ref = NiftiMasker(mask_img=mask, detrend=True, standardize=None, t_r=TR).fit_transform(
        img, confounds=conf.to_numpy()
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)

    surface = FmriExtractor(projection="surface", standardize="zscore_sample")
    surf_events = events[
        (events["type"] != "Fmri") | (events["space"] == "fsaverage5")
    ].reset_index(drop=True)
    surface.prepare(surf_events, store, progress=False)
    ours = store.get_arrays(surface.items(surf_events)[0].key)["data"]
    both = np.concatenate([hemis["L"], hemis["R"]], axis=1)
    ref = signal.clean(both, detrend=False, standardize="zscore_sample", filter=False, t_r=TR)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_header_tr_in_the_wrong_unit_is_refused(tmp_path):
    """Issue 8, case 5 for BIDS: without a sidecar RepetitionTime, nibabel's example4d header
    (2 volumes, TR 2000 with the unit "sec") would make a 4000 s run at 0.0005 Hz."""
    from tests.real_data import nibabel_example

    func = tmp_path / "ds" / "sub-01" / "func"
    func.mkdir(parents=True)
    bold = func / "sub-01_task-x_bold.nii.gz"
    shutil.copy(nibabel_example(), bold)
    (func / "sub-01_task-x_bold.json").write_text(json.dumps({"TaskName": "x"}))
    study = BidsStudy(path=tmp_path / "ds", require_events=False)
    with pytest.raises(BidsError) as info:
        study.events()
    assert str(info.value) == (
        f"{bold}: a repetition time of 2000 s (from the image header) is not plausible (above "
        "30 s; milliseconds written as seconds?); set RepetitionTime in seconds in the sidecar JSON"
    )
    (func / "sub-01_task-x_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    events = BidsStudy(path=tmp_path / "ds", require_events=False).events()
    assert events[["frequency", "duration"]].values.tolist() == [[0.5, 4.0]]


def test_unknown_stimulus_extension_names_the_fix(tmp_path):
    folder = tmp_path / "sub-01" / "eeg"
    folder.mkdir(parents=True)
    (folder / "sub-01_task-x_eeg.vhdr").write_bytes(b"")
    (folder / "sub-01_task-x_eeg.json").write_text(
        json.dumps({"SamplingFrequency": 10.0, "RecordingDuration": 9.9})
    )
    (folder / "sub-01_task-x_events.tsv").write_text("onset\tstim_file\n1.0\tpics/a.xyz\n")
    with pytest.raises(
        BidsError,
        match=r"cannot tell the stimulus type of 'pics/a.xyz' in column 'stim_file' from its "
        r"extension; map the column explicitly, e.g. stimulus_columns=\{'stim_file': 'Image'\}",
    ):
        BidsStudy(path=tmp_path).events()
    events = BidsStudy(path=tmp_path, stimulus_columns={"stim_file": "Image"}).events()
    assert events.loc[events["type"] == "Image", "filepath"].tolist() == ["stimuli/pics/a.xyz"]
