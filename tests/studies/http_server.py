"""A local HTTP file server on 127.0.0.1 for the fetch tests (a thread of the test process).

It serves a folder like a static web server (symlinks followed), honours ``Range`` requests as
S3 does, logs every request, and can misbehave on purpose: slow down (``delay`` per 64 kB chunk),
cut the connection after ``cut_after`` bytes, flip a byte of a file (``corrupt``), or ignore
``Range`` (``ignore_range``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FileServer", "serve"]


@dataclasses.dataclass
class FileServer:
    root: Path
    url: str = ""
    log: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)
    delay: float = 0.0
    cut_after: int | None = None  # bytes sent before closing the connection (once)
    corrupt: set[str] = dataclasses.field(default_factory=set)  # relative paths to damage
    ignore_range: bool = False

    def ranges(self, name: str) -> list[str | None]:
        """The ``Range`` headers of the requests for paths ending with ``name``."""
        return [r for p, r in self.log if p.endswith(name)]


def _handler(server: FileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            rel = urllib.parse.unquote(self.path.lstrip("/"))
            rng = self.headers.get("Range")
            server.log.append((rel, rng))
            path = server.root / rel
            if not path.is_file():
                self.send_error(404)
                return
            data = bytearray(path.read_bytes())
            if rel in server.corrupt and data:
                data[len(data) // 2] ^= 0xFF
            start = 0
            match = re.match(r"bytes=(\d+)-", rng or "")
            if match and not server.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            sent = 0
            for i in range(start, len(data), 65536):
                chunk = bytes(data[i : i + 65536])
                if server.cut_after is not None and sent + len(chunk) > server.cut_after:
                    self.wfile.write(chunk[: server.cut_after - sent])
                    self.wfile.flush()
                    server.cut_after = None  # only once
                    self.close_connection = True
                    return
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(chunk)
                if server.delay:
                    time.sleep(server.delay)

    return Handler


@contextlib.contextmanager
def serve(root: Path, **options: object) -> Iterator[FileServer]:
    """Serve ``root`` on a free port of 127.0.0.1 until the block ends."""
    state = FileServer(root=root, **options)  # type: ignore[arg-type]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
