"""The container credentials endpoint: what 169.254.170.2 is to a task on ECS, on loopback.

A task with a task role gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (a loopback URL naming
the task) and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (a secret only that task holds); the SDKs
then fetch the role's session credentials here, as on ECS, and every call the task makes is
signed as its role (so the local AWS holds it to the role's policies). A request without
the task's token, or for a task that stopped, gets nothing.
"""
from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

log = logging.getLogger("labkit.ecs")


class Endpoint:
    def __init__(self):
        self._grants: dict[str, tuple[str, str, Callable[[], dict]]] = {}  # id -> (token, role, credentials)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def grant(self, role_arn: str, credentials: Callable[[], dict]) -> dict:
        """The environment that lets one task fetch ``role_arn``'s credentials (made by ``credentials()``)."""
        self._ensure()
        ident, token = secrets.token_hex(16), secrets.token_urlsafe(32)
        with self._lock:
            self._grants[ident] = (token, role_arn, credentials)
        port = self._server.server_address[1]
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{port}/v2/credentials/{ident}",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": token}

    def port(self) -> int:
        """The endpoint's loopback port (it starts on first use)."""
        self._ensure()
        return self._server.server_address[1]

    def revoke(self, env: dict) -> None:
        ident = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "").rsplit("/", 1)[-1]
        with self._lock:
            self._grants.pop(ident, None)

    def clear(self) -> None:
        with self._lock:
            self._grants.clear()

    def close(self) -> None:
        self.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict]:
        if not path.startswith("/v2/credentials/"):
            return 404, {"message": "Not found"}
        with self._lock:
            grant = self._grants.get(path.rsplit("/", 1)[-1])
        if grant is None or not authorization or not hmac.compare_digest(grant[0], authorization):
            return 403, {"code": "AccessDenied", "message": "Invalid authorization token or unknown task"}
        _, role, credentials = grant
        try:
            creds = credentials()
        except Exception as exc:
            log.warning("credentials of %s not made: %s", role, exc)
            return 500, {"code": "InternalError", "message": f"credentials of {role} could not be made"}
        return 200, {"RoleArn": role, "AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
                     "Token": creds["SessionToken"], "Expiration": creds.get("Expiration") or _later()}

    def _ensure(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            endpoint = self

            class Handler(BaseHTTPRequestHandler):
                def do_GET(self):  # noqa: N802
                    status, body = endpoint.answer(self.path, self.headers.get("Authorization"))
                    data = json.dumps(body).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

                def log_message(self, *args):
                    pass

            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._server.daemon_threads = True
            threading.Thread(target=self._server.serve_forever, name="ecs-credentials", daemon=True).start()


def _later() -> str:
    return datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + 3600, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
