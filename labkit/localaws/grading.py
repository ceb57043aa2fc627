"""Grading sessions: what the grader may trust while it runs learner code, enforced in the server.

A client-side rule can be undone by the code it constrains (learner code can
build its own client, or send raw HTTP), so the server holds these rules:

- a session's credentials (``LKGR...`` key ids, signature checked) are
  read-only: a write or a control path signed with them is refused, never
  journaled, never reaching moto or an extension;
- while a session with ``lockdown`` is open, every write from anyone is
  refused, and every control path except ``/_labkit/status`` and the
  session's own path with its token (so neither the install secret nor the
  learner's own keys can change, reset or restore the state meanwhile);
- every request made with a session's key is logged (operation, status, and
  for DynamoDB what was asked and answered), and a ``page_limit`` caps the
  Limit of its DynamoDB Query and Scan, so code that ignores LastEvaluatedKey
  sees only the first page, as it would on a big table.

Sessions are not state: they live in memory only, expire by themselves after
their ``seconds`` (a crashed grader never leaves the server locked) and are
never journaled, snapshotted or checkpointed.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from . import sigv4
from .guard import GUARDED, OPEN_WITHOUT_SECRET
from .http import Request, Response, StatusKept, json_response

log = logging.getLogger("labkit.localaws")
PATH = "/_labkit/grading"
TOKEN_HEADER = "X-Labkit-Grading-Token"
KEY_PREFIX = "LKGR"  # 4 + 16 characters, like AWS's access key ids
KEY_ID = re.compile(r"^LKGR[A-Z0-9]{16}$")
DEFAULT_SECONDS = 120
MAX_SECONDS = 600
MAX_OPEN = 8           # sessions open at once: each holds a log in memory
MAX_ENDED = 16         # ended sessions whose logs can still be read
MAX_CALLS = 2000       # calls logged per session; the rest are counted
READ_ONLY = "grading credentials are read-only"
FIELDS = {"page_limit", "lockdown", "seconds"}
PAGED = ("Query", "Scan")
_ALPHABET = string.ascii_uppercase + string.digits


@dataclass
class Session:
    id: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    token: str = field(repr=False)
    page_limit: int | None
    lockdown: bool
    opened: float
    expires: float  # time.monotonic()
    calls: list = field(default_factory=list)
    dropped: int = 0
    ended: bool = False

    def left(self, now: float) -> float:
        return max(self.expires - now, 0.0)

    def record(self, call: dict) -> None:
        if len(self.calls) < MAX_CALLS:
            self.calls.append(call)
        else:
            self.dropped += 1


class Grading:
    """The open sessions and the rules they put on every request."""

    def __init__(self, on_end=None):
        self.lock = threading.Lock()
        self.open: dict[str, Session] = {}
        self.ended: dict[str, Session] = {}  # oldest first, for reading a log after the session ended
        self.on_end = on_end  # called (outside the lock) when sessions end: the journal is checked then
        self._pending_end = False

    # -- the sessions -------------------------------------------------------------
    def _sweep(self) -> list[Session]:
        """Ends the sessions whose time is up; returns the open ones. Called with the lock held."""
        now = time.monotonic()
        gone = [s for s in self.open.values() if s.left(now) <= 0]
        for session in gone:
            self._end(session)
        return list(self.open.values())

    def _end(self, session: Session) -> None:
        """Called with the lock held; ``_after`` (without it) tells ``on_end``."""
        session.ended = True
        self.open.pop(session.id, None)
        self.ended[session.id] = session
        while len(self.ended) > MAX_ENDED:
            self.ended.pop(next(iter(self.ended)))
        self._pending_end = True

    def _after(self) -> None:
        with self.lock:
            ended, self._pending_end = self._pending_end, False
        if ended and self.on_end:
            try:
                self.on_end()
            except OSError:  # the request goes on; the next append checks the journal again
                log.exception("the journal could not be checked when a grading session ended")

    def lockdown_left(self) -> float:
        """Seconds until every lockdown session has ended (0 when none is open)."""
        with self.lock:
            live = self._sweep()
        self._after()
        now = time.monotonic()
        return max((s.left(now) for s in live if s.lockdown), default=0.0)

    def status(self) -> dict:
        with self.lock:
            live = self._sweep()
        self._after()
        now = time.monotonic()
        return {"open": len(live), "lockdown_seconds": round(max((s.left(now) for s in live if s.lockdown), default=0))}

    # -- the rules -------------------------------------------------------------------
    def gate(self, request: Request, write: bool) -> Response | Session | None:
        """A refusal for ``request``; else the session whose key signs it (its call is logged), or None."""
        key = sigv4.access_key_id(request)
        control = request.path.startswith(GUARDED)
        with self.lock:
            live = self._sweep()
            session = next((s for s in live if key and hmac_equal(s.access_key_id, key)), None)
        self._after()
        if session is not None:
            refusal = None
            if write or control:  # refused before anything else: nothing it sends is looked at further
                refusal = aws_error(request, 403, "AccessDenied", READ_ONLY)
            elif not sigv4.is_v4(request):
                refusal = aws_error(request, 403, "SignatureDoesNotMatch",
                                    "Grading credentials take Signature Version 4 only (for an S3 presigned URL, "
                                    "use botocore's Config(signature_version='s3v4')).")
            elif not sigv4.verify(request, session.secret_access_key):
                refusal = aws_error(request, 403, "SignatureDoesNotMatch",
                                    "The request signature does not match the grading session's secret key.")
            if refusal is not None:
                self.log(session, request, refusal.status)
                return refusal
        elif key and KEY_ID.match(key) and (write or control):
            return aws_error(request, 403, "AccessDenied", READ_ONLY)  # an ended session's key stays read-only
        return self.locked(request, write) or session

    def locked(self, request: Request, write: bool) -> Response | None:
        """The lockdown's refusal of ``request``, or None. The app asks again under its lock, just before a
        change: a request let in before a session opened must not land inside its window."""
        left = self.lockdown_left()
        if left <= 0:
            return None
        seconds = max(int(left + 0.999), 1)
        if request.path.startswith(GUARDED):
            if request.path in OPEN_WITHOUT_SECRET or self._own_path(request):
                return None
            return json_response({"message": "The local AWS's control paths are closed while the grader runs "
                                             f"learner code, for {seconds} more second(s)."}, 403)
        if write:
            return aws_error(request, 403, "AccessDenied", "The local AWS is read-only while the grader runs "
                                                           f"learner code, for {seconds} more second(s).")
        return None

    def _own_path(self, request: Request) -> bool:
        """A request to ``/_labkit/grading/<id>`` carrying that session's token."""
        found = re.fullmatch(re.escape(PATH) + r"/([\w-]+)", request.path)
        if not found:
            return False
        with self.lock:
            session = self.open.get(found.group(1)) or self.ended.get(found.group(1))
        return session is not None and hmac_equal(session.token, request.header(TOKEN_HEADER))

    # -- serving a session's request -----------------------------------------------------
    def serve(self, session: Session, request: Request, dispatch, start_response) -> list[bytes]:
        """Answer a request signed with ``session``'s key through ``dispatch``, capping pages and logging it."""
        _, service = sigv4.scope(request)
        asked = applied = None
        params = _json_body(request) if service == "dynamodb" else None
        if params is not None and request.action in PAGED and session.page_limit:
            asked = params.get("Limit")
            applied = min(asked, session.page_limit) if isinstance(asked, int) and asked > 0 else session.page_limit
            if applied != asked:
                params["Limit"] = applied
                _replace_body(request, json.dumps(params).encode())
        heard = StatusKept(start_response)
        out = dispatch(request, heard)
        answer = None
        if params is not None:
            out = [b"".join(out)]
            answer = _json(out[0])
        self.log(session, request, heard.status, params, answer, asked, applied)
        return out

    def log(self, session: Session, request: Request, status: int | None, params: dict | None = None,
            answer: dict | None = None, asked=None, applied=None) -> None:
        _, service = sigv4.scope(request)
        call = {"service": service, "operation": request.action or f"{request.method} {request.path}",
                "status": status, "at": round(time.monotonic() - session.opened, 3)}
        if service == "dynamodb":
            params = params if params is not None else (_json_body(request) or {})
            answer = answer or {}
            call.update({
                "table": params.get("TableName"), "index": params.get("IndexName"),
                "limit": asked if applied is not None else params.get("Limit"), "limit_applied": applied,
                "select": params.get("Select"), "exclusive_start_key": "ExclusiveStartKey" in params,
                "count": answer.get("Count"), "scanned_count": answer.get("ScannedCount"),
                "item": "Item" in answer, "last_evaluated_key": "LastEvaluatedKey" in answer,
            })
        with self.lock:
            session.record(call)

    # -- the control path -------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        """``POST /_labkit/grading``, ``GET``/``DELETE /_labkit/grading/<id>`` (with the token)."""
        if request.path == PATH:
            if request.method != "POST":
                return _message(405, "Open a grading session with POST /_labkit/grading.")
            return self._open(request)
        found = re.fullmatch(re.escape(PATH) + r"/([\w-]+)", request.path)
        if not found or request.method not in ("GET", "DELETE"):
            return _message(404, "Unknown grading path: use POST /_labkit/grading, or GET or DELETE "
                                 "/_labkit/grading/<id>.")
        with self.lock:
            self._sweep()
            session = self.open.get(found.group(1)) or self.ended.get(found.group(1))
            if session is None:
                answer = _message(404, f"No grading session {found.group(1)} is known to the local AWS "
                                       "(it ended long ago, or the server restarted).")
            elif not hmac_equal(session.token, request.header(TOKEN_HEADER)):
                answer = _message(403, f"The grading session {session.id} needs its token in the "
                                       f"{TOKEN_HEADER} header.")
            else:
                if request.method == "DELETE" and not session.ended:
                    self._end(session)
                answer = json_response({"id": session.id, "open": not session.ended, "calls": list(session.calls),
                                        "dropped": session.dropped,
                                        "seconds_left": round(session.left(time.monotonic()), 1)})
        self._after()
        return answer

    def _open(self, request: Request) -> Response:
        try:
            asked = json.loads(request.body) if request.body.strip() else None
        except ValueError:
            asked = None
            problem = "is not JSON"
        else:
            problem = None
        if problem is None and not isinstance(asked, dict):
            problem = "must be a JSON object"
        if problem is None:
            unknown = sorted(set(asked) - FIELDS)
            page_limit, lockdown, seconds = (asked.get("page_limit"), asked.get("lockdown", True),
                                             asked.get("seconds", DEFAULT_SECONDS))
            if unknown:
                problem = f"has unknown field(s) {', '.join(unknown)} (known: page_limit, lockdown, seconds)"
            elif page_limit is not None and (not _whole(page_limit) or page_limit < 1):
                problem = "has a page_limit that is not null or a whole number of at least 1"
            elif not isinstance(lockdown, bool):
                problem = "has a lockdown that is not true or false"
            elif not _whole(seconds) or not 1 <= seconds <= MAX_SECONDS:
                problem = f"has seconds that is not a whole number from 1 to {MAX_SECONDS}"
        if problem is not None:
            return _message(400, f"The grading session request body {problem}; send "
                                 '{"page_limit": null, "lockdown": true, "seconds": 120}.')
        now = time.monotonic()
        with self.lock:
            if len(self._sweep()) >= MAX_OPEN:
                answer = _message(429, f"{MAX_OPEN} grading sessions are open already; close one first.")
            else:
                session = Session(id=secrets.token_hex(8), access_key_id=KEY_PREFIX + _random(16),
                                  secret_access_key=secrets.token_urlsafe(30)[:40], token=secrets.token_urlsafe(32),
                                  page_limit=page_limit, lockdown=lockdown, opened=now, expires=now + seconds)
                self.open[session.id] = session
                answer = json_response({"id": session.id, "access_key_id": session.access_key_id,
                                        "secret_access_key": session.secret_access_key, "token": session.token,
                                        "seconds": seconds, "page_limit": page_limit, "lockdown": lockdown}, 201)
        self._after()
        return answer


def hmac_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), (b or "").encode())


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _message(status: int, sentence: str) -> Response:
    return json_response({"message": sentence}, status)


def _json(data: bytes) -> dict | None:
    try:
        found = json.loads(data)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _json_body(request: Request) -> dict | None:
    return _json(request.body) if request.body else None


def _replace_body(request: Request, body: bytes) -> None:
    import io

    request.body = body
    request.environ["wsgi.input"] = io.BytesIO(body)
    request.environ["CONTENT_LENGTH"] = str(len(body))


def aws_error(request: Request, status: int, code: str, message: str) -> Response:
    """A refusal in the error shape of the request's protocol, so SDKs raise their usual ClientError."""
    _, service = sigv4.scope(request)
    json_type = {"AccessDenied": "AccessDeniedException", "SignatureDoesNotMatch": "InvalidSignatureException"}[code]
    if request.header("X-Amz-Target") or "json" in request.header("Content-Type"):
        return json_response({"__type": json_type, "message": message, "Message": message}, status,
                             {"x-amzn-ErrorType": json_type})
    if service == "s3" or (service is None and not request.action and not request.path.startswith("/_api/")):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
                f"</Message><RequestId>{secrets.token_hex(8)}</RequestId></Error>")
        return Response(status, body.encode(), {"Content-Type": "application/xml"})
    if request.action:  # the query protocol (IAM, STS, SQS, ...)
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"</Error><RequestId>{secrets.token_hex(8)}</RequestId></ErrorResponse>")
        return Response(status, body.encode(), {"Content-Type": "text/xml"})
    # rest-json (Lambda, API Gateway): botocore reads the code from x-amzn-ErrorType
    return json_response({"__type": json_type, "message": message, "Message": message}, status,
                         {"x-amzn-ErrorType": json_type})
