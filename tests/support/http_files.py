"""A real HTTP server on 127.0.0.1 serving files from memory, with the faults a download
meets: a server error on the first requests, a body cut off after part of its bytes (the
full Content-Length announced, then the connection closed). It answers single-range
``Range: bytes=START-[END]`` requests with 206, so a client that resumes can be tested, and
records every request's path and Range header."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Files:
    """What the server serves and how it misbehaves; tests change it while it runs."""

    files: dict[str, bytes]  # URL path (no leading slash) -> body
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> 503s still to send
    cut: dict[str, int] = field(default_factory=dict)  # path -> cut bodies still to send
    cut_fraction: float = 0.5  # share of the body a cut response sends
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    url: str = ""

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a ``bytes=START-[END]`` header, None for no or another
    kind of range (the whole body is sent then)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    start, _, end = header[len("bytes=") :].partition("-")
    if not start.isdigit():
        return None
    last = int(end) if end.isdigit() else size - 1
    return int(start), min(last, size - 1)


def _handler(state: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            path = self.path.lstrip("/").split("?")[0]
            state.requests.append((path, self.headers.get("Range")))
            if path not in state.files:
                self.send_error(404)
                return
            if state.fail_first.get(path, 0) > 0:
                state.fail_first[path] -= 1
                self.send_error(503, "try again")
                return
            body = state.files[path]
            wanted = _range(self.headers.get("Range"), len(body))
            if wanted is not None and wanted[0] >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if wanted is not None:
                start, end = wanted
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                body = body[start : end + 1]
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if state.cut.get(path, 0) > 0:
                state.cut[path] -= 1
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: int(len(body) * state.cut_fraction)])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serving(files: dict[str, bytes]) -> Iterator[Files]:
    """Serve ``files`` on a free loopback port; ``.url`` is the folder URL (ending in /)."""
    state = Files(files=dict(files))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
