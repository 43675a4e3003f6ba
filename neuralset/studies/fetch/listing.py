"""List the files of a dataset served over HTTP(S), without a clone: S3 buckets and web folders.

A *listing* yields one :class:`RemoteFile` per file under a URL prefix: its path relative to the
prefix, its URL, and what the server says about it (size, ETag, the content's MD5 when the ETag
is one). Two protocols are spoken, with the standard library only:

* :class:`S3Listing` - the S3 ``ListObjectsV2`` API (``GET /<bucket>?list-type=2&prefix=...``,
  1,000 keys per page, followed with ``continuation-token``). OpenNeuro publishes every dataset in
  the public bucket ``s3://openneuro.org/<dataset>/``; any S3-compatible store (MinIO, Ceph, a
  lab's bucket) answers the same. The ETag of an object uploaded in one part is the MD5 of its
  content, so those files are verified after download;
* :class:`HttpIndexListing` - the HTML index pages web servers generate for folders (Python's
  ``http.server``, nginx ``autoindex``, Apache ``mod_autoindex``): links are followed down the
  tree. Index pages give no reliable sizes (none, or rounded), so sizes are asked with a
  ``HEAD`` request per file when needed (:func:`head_size`).

:func:`open_listing` picks the protocol from the URL (``s3://bucket/prefix``, or an
``*.amazonaws.com`` host: S3; other ``http(s)://`` URLs: index pages) unless told. Network
failures raise :class:`~neuralset.studies.fetch.errors.FetchError` naming the URL and the fix,
at the first request.
"""

from __future__ import annotations

import dataclasses
import html.parser
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Protocol

from .errors import FetchError

__all__ = [
    "RemoteFile",
    "Listing",
    "S3Listing",
    "HttpIndexListing",
    "LISTINGS",
    "open_listing",
    "head_size",
    "request",
]

#: listing protocols known to :func:`open_listing`
LISTINGS = ("auto", "s3", "http-index")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_AWS_VHOST = re.compile(r"^(?P<bucket>.+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com$")
_AGENT = {"User-Agent": "neuralset-listing"}


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a remote listing.

    Attributes
    ----------
    path
        Path relative to the listed prefix, ``/``-separated (``sub-01/eeg/sub-01_eeg.vhdr``).
    url
        Where to download it.
    size
        Size in bytes (None when the listing does not say; see :func:`head_size`).
    etag
        The server's ETag (quotes removed), when given.
    md5
        MD5 of the content, when the listing gives one (an S3 ETag of a single-part upload).
    """

    path: str
    url: str
    size: int | None = None
    etag: str | None = None
    md5: str | None = None


class Listing(Protocol):
    """A listing protocol: the files under one URL prefix."""

    #: the URL prefix the paths are relative to (``<url>/<path>`` downloads a file)
    url: str

    def files(self) -> Iterator[RemoteFile]:
        """Every file under the prefix (folders are walked; order unspecified)."""
        ...


def request(url: str, *, method: str = "GET", timeout: float = 60.0, what: str = "") -> bytes:
    """The body of ``url`` (empty for HEAD); :class:`FetchError` naming the URL and the fix."""
    try:
        req = urllib.request.Request(url, headers=_AGENT, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (http(s))
            return b"" if method == "HEAD" else response.read()
    except urllib.error.HTTPError as err:
        hint = {
            403: "access denied: is the bucket or folder public, and the URL right?",
            404: "not found: check the URL (dataset id, prefix, trailing folder)",
        }.get(err.code, "the server refused the request; check the URL")
        raise FetchError(
            f"{what or 'request'} failed: HTTP {err.code} {err.reason} for {url}: {hint}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(
            f"{what or 'request'} failed: cannot reach {url} ({reason}); check the URL and the "
            "network connection (offline? behind a proxy: set HTTPS_PROXY)"
        ) from None


def head_size(url: str, *, timeout: float = 60.0) -> int | None:
    """``Content-Length`` of ``url`` from a ``HEAD`` request (None when the server omits it)."""
    req = urllib.request.Request(url, headers=_AGENT, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (http(s))
            length = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(
            f"size of {url} unknown: the HEAD request failed ({reason}); check the URL and the "
            "network connection"
        ) from None
    return int(length) if length is not None and length.isdigit() else None


def _quote(path: str) -> str:
    return urllib.parse.quote(path, safe="/~")


class S3Listing:
    """The S3 ``ListObjectsV2`` listing of ``<bucket>/<prefix>`` (see the module docstring).

    Parameters
    ----------
    url
        ``s3://<bucket>/<prefix>`` (AWS, path-style ``https://s3.amazonaws.com``), a path-style
        ``http(s)://<host>/<bucket>/<prefix>`` (any S3-compatible server) or an AWS
        virtual-hosted ``https://<bucket>.s3.amazonaws.com/<prefix>``.
    max_keys
        Keys per page (the server's default, 1,000 on AWS, when None).
    timeout
        Seconds per request.
    """

    def __init__(self, url: str, *, max_keys: int | None = None, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme == "s3":
            parsed = urllib.parse.urlsplit(f"https://s3.amazonaws.com/{parsed.netloc}{parsed.path}")
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"not an S3 URL: {url!r}; expected s3://bucket/prefix or https://...")
        path = urllib.parse.unquote(parsed.path).strip("/")
        vhost = _AWS_VHOST.match(parsed.hostname or "")
        origin = f"{parsed.scheme}://{parsed.netloc}"
        if vhost is not None:
            bucket, prefix = vhost.group("bucket"), path
            self._list_url = f"{origin}/"
            base = f"{origin}/{_quote(prefix)}"
        else:
            bucket, _, prefix = path.partition("/")
            if not bucket:
                raise FetchError(f"no bucket in the S3 URL {url!r}; expected .../<bucket>/<prefix>")
            self._list_url = f"{origin}/{_quote(bucket)}"
            base = f"{origin}/{_quote(bucket)}/{_quote(prefix)}"
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.url = base.rstrip("/")
        self.max_keys = max_keys
        self.timeout = timeout
        #: pages requested by the last :meth:`files` (for tests and reports)
        self.pages = 0

    def files(self) -> Iterator[RemoteFile]:
        self.pages = 0
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": self.prefix}
            if self.max_keys is not None:
                query["max-keys"] = str(self.max_keys)
            if token is not None:
                query["continuation-token"] = token
            page = f"{self._list_url}?{urllib.parse.urlencode(query)}"
            body = request(
                page, timeout=self.timeout, what=f"listing s3://{self.bucket}/{self.prefix}"
            )
            self.pages += 1
            files, token = self._parse(page, body)
            yield from files
            if token is None:
                return

    def _parse(self, page: str, body: bytes) -> tuple[list[RemoteFile], str | None]:
        try:
            root = ET.fromstring(body)
        except ET.ParseError as err:
            raise FetchError(
                f"{page} did not answer an S3 ListObjectsV2 XML document ({err}); is this an S3 "
                "endpoint? For a web folder use listing='http-index'"
            ) from None
        out: list[RemoteFile] = []
        truncated, token = False, None
        for child in root:
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "IsTruncated":
                truncated = (child.text or "").strip() == "true"
            elif tag == "NextContinuationToken":
                token = child.text
            elif tag == "Contents":
                item = {c.tag.rsplit("}", 1)[-1]: (c.text or "") for c in child}
                key = item.get("Key", "")
                if not key.startswith(self.prefix) or key.endswith("/"):
                    continue  # folder markers
                rel = key[len(self.prefix) :]
                etag = item.get("ETag", "").strip().strip('"') or None
                out.append(
                    RemoteFile(
                        path=rel,
                        url=f"{self.url}/{_quote(rel)}",
                        size=int(item["Size"]) if item.get("Size", "").isdigit() else None,
                        etag=etag,
                        md5=etag if etag and _MD5.match(etag) else None,
                    )
                )
        if truncated and not token:
            raise FetchError(f"{page}: truncated S3 listing without a NextContinuationToken")
        return out, token if truncated else None


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.append(value)


class HttpIndexListing:
    """The files under a web folder, from its HTML index pages (see the module docstring).

    Only links to the folder's own children are followed (parent links, sort links such as
    Apache's ``?C=N;O=D`` and links elsewhere are ignored); dot files are skipped. Sizes are
    None: :func:`head_size` asks them.

    Parameters
    ----------
    url
        The folder's URL (a trailing ``/`` is added).
    timeout
        Seconds per request.
    max_pages
        Folders walked at most (a guard against link loops).
    """

    def __init__(self, url: str, *, timeout: float = 60.0, max_pages: int = 100_000) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_pages = max_pages
        self.pages = 0

    def files(self) -> Iterator[RemoteFile]:
        self.pages = 0
        todo = [self.url + "/"]
        seen = set(todo)
        while todo:
            page = todo.pop()
            self.pages += 1
            if self.pages > self.max_pages:
                raise FetchError(f"more than {self.max_pages} folders under {self.url}; a loop?")
            body = request(page, timeout=self.timeout, what=f"listing {self.url}")
            for link in self._children(page, body):
                if link.endswith("/"):
                    if link not in seen:
                        seen.add(link)
                        todo.append(link)
                    continue
                rel = urllib.parse.unquote(link[len(self.url) + 1 :])
                yield RemoteFile(path=rel, url=link)

    def _children(self, page: str, body: bytes) -> list[str]:
        parser = _Links()
        parser.feed(body.decode("utf-8", errors="replace"))
        out = []
        for href in parser.hrefs:
            link = urllib.parse.urljoin(page, href)
            parts = urllib.parse.urlsplit(link)
            if parts.query or parts.fragment or not link.startswith(page) or link == page:
                continue
            name = link[len(page) :]
            if "/" in name.rstrip("/") or urllib.parse.unquote(name).startswith("."):
                continue  # not a direct child, or a dot file / folder
            out.append(link)
        return sorted(set(out))


def open_listing(url: str, listing: str = "auto", *, timeout: float = 60.0) -> Listing:
    """The listing of ``url`` with protocol ``listing`` (one of :data:`LISTINGS`).

    ``"auto"``: S3 for ``s3://`` URLs and ``*amazonaws.com`` hosts, HTML index pages otherwise.
    """
    if listing not in LISTINGS:
        raise FetchError(f"unknown listing {listing!r}: expected one of {', '.join(LISTINGS)}")
    scheme = urllib.parse.urlsplit(url).scheme
    host = urllib.parse.urlsplit(url).hostname or ""
    if scheme not in ("s3", "http", "https"):
        raise FetchError(
            f"cannot list {url!r}: expected an s3://, http:// or https:// URL of the dataset's "
            "top folder"
        )
    if listing == "s3" or (
        listing == "auto" and (scheme == "s3" or host.endswith("amazonaws.com"))
    ):
        return S3Listing(url, timeout=timeout)
    if scheme == "s3":
        raise FetchError(f"an s3:// URL is listed with listing='s3', got listing={listing!r}")
    return HttpIndexListing(url, timeout=timeout)
