"""A file server on 127.0.0.1 for the download tests (nothing leaves the machine)."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LoopbackServer(http.server.ThreadingHTTPServer):
    """Serves ``files``; ``mode='truncated'`` announces the full length but sends half and hangs up."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.mode, self.downloads = files, "good", []

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_port}/{name}?download=1"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: LoopbackServer

    def do_HEAD(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        self._answer(send_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        body = self.server.files.get(self.path.lstrip("/").split("?")[0])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.server.downloads.append(self.path)
            try:
                self.wfile.write(body[:len(body) // 2] if self.server.mode == "truncated" else body)
            except OSError:
                pass  # torchvision opens each URL once only to follow redirects, then hangs up
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(files: dict[str, bytes]) -> Iterator[LoopbackServer]:
    """Serve ``files`` on 127.0.0.1 for the duration of the block, then stop the server."""
    httpd = LoopbackServer(files)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
