"""Stand-in executables for the cluster tests that must run without Go or Kubernetes."""

from __future__ import annotations

import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# A fake etcd: answers 200 on every path of the port in --listen-client-urls.
FAKE_ETCD = f"""#!{sys.executable}
import http.server, sys
url = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--listen-client-urls="))
port = int(url.rsplit(":", 1)[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{{}}")
    def log_message(self, *a):
        pass
print("fake etcd serving", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""

MakeExe = Callable[[str, str], Path]


@pytest.fixture
def make_exe(tmp_path: Path) -> MakeExe:
    """Write an executable script `name` with `body` into a bin directory."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)

    def make(name: str, body: str) -> Path:
        path = bindir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return path

    return make
