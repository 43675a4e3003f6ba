"""Explore a BIDS dataset served over HTTP(S) without a clone, then fetch a selection (issue 9).

Real servers on 127.0.0.1: Python's ``http.server`` (HTML index pages) and moto's S3 server
(ListObjectsV2 with real pagination, multipart ETags). The tree is real metadata of OpenNeuro's
ds002345 with synthetic recordings (:mod:`tests.studies.remote_data`).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.studies.bids import BidsStudy
from neuralset.studies.fetch import FetchError
from neuralset.studies.fetch.listing import HttpIndexListing, S3Listing, open_listing
from neuralset.studies.fetch.mirror import MIRROR_FILE, is_metadata, mirror_info, mirror_metadata

from .remote_data import SHARED, narratives_part, s3_bucket, serve_folder

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no real metadata at {SHARED}")

#: columns that differ between a mirror (nothing fetched) and the full local copy
FILE_COLUMNS = ["file_present", "file_size", "duration", "duration_source", "study_root"]
RUN = "sub-001/func/sub-001_task-pieman_run-1_bold.nii.gz"


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return narratives_part(tmp_path_factory.mktemp("remote") / "ds002345", big_stimulus=True)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def _compare_explored(mirror_events: pd.DataFrame, local: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        mirror_events.drop(columns=FILE_COLUMNS), local.drop(columns=FILE_COLUMNS)
    )
    data = local["filepath"].notna().to_numpy()
    assert not mirror_events.loc[data, "file_present"].any()
    np.testing.assert_array_equal(  # sizes from the listing = the real files' sizes
        mirror_events.loc[data, "file_size"].to_numpy(), local.loc[data, "file_size"].to_numpy()
    )


def test_http_index_mirror_explore_then_fetch(origin: Path, tmp_path: Path) -> None:
    import nibabel as nib

    local = BidsStudy(path=origin).events()
    mirror = tmp_path / "mirror"
    with serve_folder(origin) as (url, log):
        report = mirror_metadata(url, mirror)
        # only the index pages, the metadata and HEAD requests: no recording downloaded
        gets = sorted(p for m, p in log if m == "GET" and not p.endswith("/"))
        heads = sorted(p for m, p in log if m == "HEAD")
        assert gets == sorted("/" + p for p in _files(origin) if is_metadata(p))
        assert heads == sorted("/" + p for p in _files(origin) if not is_metadata(p))
        assert (report.metadata_files, report.metadata_downloaded, report.placeholders) == (
            21,
            21,
            9,
        )
        study = BidsStudy(path=mirror)
        events = study.events()
        assert len(events) == len(local) == 23
        _compare_explored(events, local)
        fmri = events[events["type"] == "Fmri"]
        assert fmri["duration_source"].eq("unknown").all() and fmri["duration"].isna().all()
        assert set(events["age"]) == {"22,23", "20"}  # participants.tsv joined, from the mirror
        # fetch one run and its audio: exactly those two files, from the URL the mirror records
        selection = events[(events["timeline"] == "sub-001_task-pieman_run-1")]
        selection = selection[selection["type"].isin(["Fmri", "Audio"])]
        log.clear()
        report2 = study.fetch(selection, progress=False)
        assert sorted(p for _, p in log) == ["/stimuli/pieman_audio.wav", "/" + RUN]
    assert report2.fetched == 2 and report2.source == url
    assert _md5(mirror / RUN) == _md5(origin / RUN)
    np.testing.assert_array_equal(
        nib.load(mirror / RUN).get_fdata(), nib.load(origin / RUN).get_fdata()
    )
    again = BidsStudy(path=mirror).events()
    run = again["timeline"] == "sub-001_task-pieman_run-1"
    pd.testing.assert_frame_equal(  # the fetched run: now equal to the local copy, header durations too
        again[run].drop(columns=["study_root"]), local[run].drop(columns=["study_root"])
    )
    assert not again.loc[~run & (again["type"] == "Fmri"), "file_present"].any()


def test_mirror_resumes_and_nothing_half_written(origin: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    events_tsv = "/sub-002/func/sub-002_task-pieman_run-2_events.tsv"
    with serve_folder(origin, fail={events_tsv: 1}) as (url, log):
        with pytest.raises(FetchError) as err:
            mirror_metadata(url, mirror, jobs=1)
        assert str(err.value) == (
            f"download of {events_tsv[1:]} failed: HTTP 503 unavailable on purpose for "
            f"{url}{events_tsv}: the server refused the request; check the URL"
        )
        assert not (mirror / events_tsv[1:]).exists()  # nothing half-written is visible
        assert not [p for p in mirror.rglob(".*") if p.name != MIRROR_FILE]
        info = mirror_info(mirror)
        assert info is not None and info["complete"] is False
        with pytest.raises(FetchError) as err:
            BidsStudy(path=mirror).events()
        assert str(err.value) == (
            f"the metadata mirror of {url} in {mirror} is incomplete (interrupted?): run "
            f"mirror_metadata({url!r}, {str(mirror)!r}) or `neuralset mirror {url} {mirror}` "
            "again; it resumes"
        )
        first = {p for m, p in log if m == "GET" and not p.endswith("/")}
        log.clear()
        report = mirror_metadata(url, mirror, jobs=1)
        again = {p for m, p in log if m == "GET" and not p.endswith("/")}
    assert again == {events_tsv} | ({"/" + p for p in _files(origin) if is_metadata(p)} - first)
    assert report.metadata_downloaded == len(again)
    pd.testing.assert_frame_equal(
        BidsStudy(path=mirror).events().drop(columns=FILE_COLUMNS),
        BidsStudy(path=origin).events().drop(columns=FILE_COLUMNS),
    )


def test_s3_listing_pages_checksums_and_fetch(origin: Path, tmp_path: Path) -> None:
    import nibabel as nib

    with s3_bucket(origin, "openneuro.org", "ds002345") as (endpoint, client):
        url = f"{endpoint}/openneuro.org/ds002345"
        listing = S3Listing(url, max_keys=7)
        items = list(listing.files())
        assert len(items) == len(_files(origin)) == 30
        assert listing.pages == 5  # 30 keys, 7 per page: 4 continuation tokens followed
        by_path = {f.path: f for f in items}
        assert by_path[RUN].md5 == _md5(origin / RUN)  # one-part upload: the ETag is the MD5
        big = by_path["stimuli/tunnel_audio.wav"]
        assert big.md5 is None and big.etag is not None and big.etag.endswith("-2")  # 2 parts
        assert big.size == (origin / "stimuli/tunnel_audio.wav").stat().st_size

        mirror = tmp_path / "mirror"
        report = mirror_metadata(url, mirror, listing=S3Listing(url, max_keys=7))
        assert report.placeholders == 9 and report.remote_bytes == sum(
            (origin / p).stat().st_size for p in _files(origin) if not is_metadata(p)
        )
        assert (mirror / RUN).read_text() == (
            f"/annex/objects/MD5E-s{(origin / RUN).stat().st_size}--{_md5(origin / RUN)}.nii.gz\n"
        )
        study = BidsStudy(path=mirror)
        events = study.events()
        _compare_explored(events, BidsStudy(path=origin).events())
        tunnel = events[events["timeline"] == "sub-001_task-tunnel"]
        study.fetch(tunnel[tunnel["type"].isin(["Fmri", "Audio"])], progress=False)
        for rel in ("sub-001/func/sub-001_task-tunnel_bold.nii.gz", "stimuli/tunnel_audio.wav"):
            assert _md5(mirror / rel) == _md5(origin / rel)
        bold = nib.load(mirror / "sub-001/func/sub-001_task-tunnel_bold.nii.gz")
        assert bold.shape == (3, 3, 3, 1027)

        # the object changes on the server after the listing: the listed MD5 catches it
        data = bytearray((origin / RUN).read_bytes())
        data[100] ^= 0xFF
        client.put_object(Bucket="openneuro.org", Key=f"ds002345/{RUN}", Body=bytes(data))
        run = events[(events["filepath"] == RUN)]
        with pytest.raises(FetchError) as err:
            study.fetch(run, progress=False)
    assert f"corrupted download of {url}/{RUN}: md5 " in str(err.value)
    assert "does not match the git-annex key MD5E-s" in str(err.value)
    assert (mirror / RUN).read_text().startswith("/annex/objects/")  # still the placeholder


def test_remote_field_and_cli(origin: Path, tmp_path: Path) -> None:
    import contextlib
    import io

    from neuralset.cli import main

    mirror = tmp_path / "mirror"
    with serve_folder(origin) as (url, log):
        study = BidsStudy(path=mirror, remote=url, subjects=("002",))
        with pytest.raises(FetchError) as err:  # inspect-like discovery writes nothing
            study.preview_events()
        assert str(err.value).startswith(
            f"the metadata of {url} is not mirrored in {mirror} yet: call study.events()"
        )
        events = study.events()  # mirrors first
        assert set(events["subject"]) == {"002"} and mirror_info(mirror)["complete"]
        n_requests = len(log)
        assert BidsStudy(path=mirror, remote=url).events()["subject"].nunique() == 2
        assert len(log) == n_requests  # a complete mirror is not listed again
        config = tmp_path / "pipeline.yaml"
        config.write_text(
            f"study: {{kind: bids, path: {tmp_path / 'cli'}, remote: '{url}', "
            f"subjects: ['002']}}\nstore: {tmp_path / 'store'}\n"
        )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["mirror", url, str(tmp_path / "cli2")]) == 0
            assert main(["fetch", str(config), "--no-progress"]) == 0
        lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"mirrored {url} into {tmp_path / 'cli2'}: 21 metadata files")
    # 2 runs and their audio fetched; their sidecars (JSON, events) were mirrored already
    assert lines[-1].startswith("7 files needed: 4 already present, 3 fetched")
    for rel in ("sub-002/func/sub-002_task-pieman_run-1_bold.nii.gz", "stimuli/pieman_audio.wav"):
        assert _md5(tmp_path / "cli" / rel) == _md5(origin / rel)


def test_offline_and_wrong_urls_are_clear(origin: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError) as err:
        mirror_metadata(f"http://127.0.0.1:{port}/openneuro.org/ds002345", tmp_path / "a")
    assert str(err.value) == (
        f"listing http://127.0.0.1:{port}/openneuro.org/ds002345 failed: cannot reach "
        f"http://127.0.0.1:{port}/openneuro.org/ds002345/ ([Errno 111] Connection refused); "
        "check the URL and the network connection (offline? behind a proxy: set HTTPS_PROXY)"
    )
    with serve_folder(origin.parent) as (url, _):  # one folder too high: not a BIDS root
        with pytest.raises(FetchError, match=r"holds no dataset_description.json at its top"):
            mirror_metadata(url, tmp_path / "b")
        with pytest.raises(FetchError) as err:
            mirror_metadata(f"{url}/ds999999", tmp_path / "c")
        assert "HTTP 404" in str(err.value) and "check the URL (dataset id" in str(err.value)
    assert isinstance(open_listing("s3://openneuro.org/ds000117"), S3Listing)
    assert open_listing("s3://openneuro.org/ds000117").url == (
        "https://s3.amazonaws.com/openneuro.org/ds000117"
    )
    assert isinstance(open_listing("https://example.org/data/ds1"), HttpIndexListing)
    with pytest.raises(FetchError, match=r"expected an s3://, http:// or https:// URL"):
        open_listing("ftp://example.org/ds1")
