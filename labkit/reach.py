"""Whether an HTTP endpoint answers at all, within a bound: a learner command must never hang.

A port can be held by a program that accepts connections and never replies
(a stuck server, another tool). Connecting proves nothing; only an HTTP
answer does. ``silence`` sends one small request and says in one sentence
what did not answer, and where, or returns None when anything answered
(any status: an error page is still an answer).
"""
from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 5.0  # the local AWS answers in milliseconds; AWS in well under a second


def silence(url: str, what: str, timeout_s: float = PROBE_TIMEOUT_S, path: str = "/") -> str | None:
    """None if ``url`` answers HTTP within ``timeout_s``, else one sentence naming ``what`` and where."""
    parsed = urlparse(url)
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    kind = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    connection = kind(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers={"Host": parsed.netloc or host})
        connection.getresponse().read(0)
        return None
    except (socket.timeout, TimeoutError):
        return (f"{what} at {url} accepted the connection but did not answer within {timeout_s:g} s; "
                "another program may hold that port.")
    except ConnectionRefusedError:
        return f"{what} cannot be reached: nothing listens at {url}."
    except (ssl.SSLError, http.client.HTTPException):
        return None  # it answered, if not plainly (a TLS setup botocore may handle with its own CA bundle)
    except OSError as exc:
        return f"{what} at {url} could not be reached ({type(exc).__name__}: {exc})."
    finally:
        connection.close()
