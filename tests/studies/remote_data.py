"""A small part of the real ds002345 (Narratives) tree with synthetic recordings, and servers.

:func:`narratives_part` copies the real metadata of two subjects of OpenNeuro's ds002345 (top-level
files, sidecars, events, scans; ``/work/shared/data/openneuro``, or ``../shared`` from the
repository) and writes, in place of each git-annex pointer, a synthetic file with the header the
sidecars declare: a small 4-D NIfTI with the run's volume count at the sidecar's TR, a T1w
image, and the two story WAV files the events reference (``big_stimulus`` makes one of them
larger than S3's 5 MB multipart threshold).

:func:`serve_folder` runs Python's own ``http.server`` (``SimpleHTTPRequestHandler``, the HTML
index pages included) on 127.0.0.1 over a folder and logs each request; :func:`s3_bucket` runs
moto's S3 server and uploads a folder under a prefix.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import math
import shutil
import threading
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SHARED = Path("/work/shared/data/openneuro/ds002345")
if not SHARED.is_dir():
    SHARED = REPO.parent / "shared/data/openneuro/ds002345"
SUBJECTS = ("sub-001", "sub-002")
TOP = ("dataset_description.json", "participants.tsv", "participants.json", "README", "CHANGES")


def narratives_part(dest: Path, *, big_stimulus: bool = False) -> Path:
    """The tree (see the module docstring) at ``dest``; returns ``dest``."""
    import nibabel as nib

    dest.mkdir(parents=True, exist_ok=True)
    for name in TOP:
        shutil.copyfile(SHARED / name, dest / name)
    for sub in SUBJECTS:
        for path in sorted((SHARED / sub).rglob("*")):
            if path.is_dir():
                continue
            target = dest / path.relative_to(SHARED)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not path.name.endswith(".nii.gz"):
                shutil.copyfile(path, target)
                continue
            rng = np.random.default_rng(zlib.crc32(path.name.encode()))
            if "_bold" in path.name:
                events = pd.read_csv(str(path).replace("_bold.nii.gz", "_events.tsv"), sep="\t")
                tr = json.loads(Path(str(path).replace(".nii.gz", ".json")).read_text())[
                    "RepetitionTime"
                ]
                n_vol = math.ceil((events["onset"] + events["duration"]).max() / tr) + 2
                data = rng.normal(size=(3, 3, 3, n_vol)).astype(np.float32)
                img = nib.Nifti1Image(data, np.eye(4))
                img.header.set_zooms((3.0, 3.0, 3.0, tr))
            else:
                img = nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4))
            nib.save(img, target)
    stimuli = dest / "stimuli"
    stimuli.mkdir(exist_ok=True)
    for name, seconds in (("pieman_audio.wav", 1.0), ("tunnel_audio.wav", 170.0 * big_stimulus)):
        _wav(stimuli / name, max(seconds, 0.5))
    return dest


def _wav(path: Path, seconds: float) -> None:
    n = int(16000 * seconds)
    t = np.arange(n) / 16000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes())


class _LoggingHandler(http.server.SimpleHTTPRequestHandler):
    log: list[tuple[str, str]]
    fail: dict[str, int]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _record(self) -> bool:
        path = self.path.split("?", 1)[0]
        self.log.append((self.command, path))
        if self.fail.get(path, 0) > 0:  # fail this path that many times
            self.fail[path] -= 1
            self.send_error(503, "unavailable on purpose")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        if self._record():
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if self._record():
            super().do_HEAD()


@contextlib.contextmanager
def serve_folder(root: Path, fail: dict[str, int] | None = None) -> Iterator[Any]:
    """Python's ``http.server`` over ``root`` on 127.0.0.1; yields (url, log of (method, path))."""
    log: list[tuple[str, str]] = []
    handler = type("Handler", (_LoggingHandler,), {"log": log, "fail": dict(fail or {})})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def s3_bucket(root: Path, bucket: str, prefix: str) -> Iterator[tuple[str, Any]]:
    """moto's S3 server on 127.0.0.1 holding ``root``'s files under ``prefix``; (endpoint, client).

    Files over 5 MB are uploaded in 5 MB parts (multipart: their ETag is not an MD5).
    """
    import boto3
    from boto3.s3.transfer import TransferConfig
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        port = server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=bucket)
        public = {  # anyone may list and read, as OpenNeuro's bucket
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public))
        config = TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(root).as_posix()}"
                client.upload_file(str(path), bucket, key, Config=config)
        yield endpoint, client
    finally:
        server.stop()
