#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A git server over dumb HTTP on loopback that demands a token (tests/integration/test_client.c).

Usage: git_http_server.py ROOT TOKEN_FILE PORT_FILE

Serves ROOT (bare repositories after `git update-server-info`) on 127.0.0.1 at a free port,
written to PORT_FILE. Every request must carry HTTP Basic credentials whose password is the
token in TOKEN_FILE (read once; it never goes through argv), any user name but an empty one;
else 401 with a Basic challenge, as GitLab, Gitea and GitHub answer git. One line per request
on stderr: the path, and "ok", "none" or "wrong" (never the credentials).
"""
import base64
import functools
import hmac
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    token = b""

    def log_message(self, fmt, *args):
        pass

    def _authorized(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return "none"
        try:
            user, _, password = base64.b64decode(h[6:], validate=True).partition(b":")
        except ValueError:
            return "wrong"
        if user and hmac.compare_digest(password, self.token):
            return "ok"
        return "wrong"

    def do_GET(self):
        verdict = self._authorized()
        sys.stderr.write("%s %s\n" % (self.path.split("?")[0], verdict))
        sys.stderr.flush()
        if verdict != "ok":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="latchkey-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def main():
    root, token_file, port_file = sys.argv[1:4]
    with open(token_file, "rb") as f:
        Handler.token = f.read().strip()
    handler = functools.partial(Handler, directory=root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
