"""One warm Lambda execution environment: a Python process running deployed code.

Started by the Lambda runner (``lambdarun.py``) with the function's code folder as working
directory and its environment (variables, role credentials, the local
endpoint) already set. It imports the handler once (Lambda's init phase),
then serves invocations: one JSON line in on stdin, one JSON line out on the
protocol pipe. What the handler prints or logs is collected per invocation
and sent back as log lines, because on AWS those go to CloudWatch Logs.
"""
from __future__ import annotations

import importlib
import io
import json
import logging
import os
import resource
import sys
import time
import traceback

RUNTIME_BASE_MB = 40  # about what Lambda's Python runtime uses before any handler code
# The runner watches resident memory against the memory setting; this address-space limit is
# the backstop for an allocation faster than its look (virtual size runs well above resident).
# Generous, because libraries reserve address space they never touch (thread stacks, BLAS buffers).
ADDRESS_SPACE_HEADROOM_MB = 1024


def peak_rss_mb() -> int:
    """This process's resident high-water mark. Not ru_maxrss: on Linux that survives exec, so a
    sandbox started by a 300 MB server would start at 300 MB and hide what its handler uses."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def hold_address_space(memory_mb: int) -> None:
    try:
        with open("/proc/self/statm") as fh:
            now = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return  # not Linux: the runner's watch alone holds it
    limit = now + (max(4 * memory_mb, 1024) + ADDRESS_SPACE_HEADROOM_MB) * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


class Context:
    """The fields of Lambda's context object that handlers use."""

    def __init__(self, message: dict):
        env = os.environ
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = message["arn"]
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = message["request_id"]
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline_ms = message["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


class Lines(io.TextIOBase):
    """A stdout/stderr stand-in that keeps whole lines for the log stream."""

    def __init__(self):
        self.lines: list[str] = []
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = self._partial + text
        *complete, self._partial = text.split("\n")
        self.lines.extend(complete)
        return len(text)

    def take(self) -> list[str]:
        if self._partial:
            self.lines.append(self._partial)
            self._partial = ""
        taken, self.lines = self.lines, []
        return taken


class LambdaFormatter(logging.Formatter):
    """The Python runtime's log line: [LEVEL] time request-id message."""

    request_id = ""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        return f"[{record.levelname}]\t{stamp}\t{self.request_id}\t{record.getMessage()}"


def error_payload(exc: BaseException, error_type: str | None = None, request_id: str = "") -> dict:
    stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
    return {"errorMessage": str(exc), "errorType": error_type or type(exc).__name__,
            "requestId": request_id, "stackTrace": [line.rstrip("\n") for line in stack]}


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything written to fd 1 by C code must not corrupt the protocol
    lines = Lines()
    sys.stdout = sys.stderr = lines
    formatter = LambdaFormatter()
    root = logging.getLogger()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(formatter)
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # the Python runtime's default

    baseline_mb = peak_rss_mb()  # the local interpreter itself
    hold_address_space(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")))
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        handler_fn = getattr(module, function_name, None)
        if handler_fn is None:
            raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    except AttributeError as exc:
        protocol.write(json.dumps({"init_error": error_payload(exc, "Runtime.HandlerNotFound"), "logs": lines.take()}) + "\n")
        return
    except Exception as exc:  # what Lambda reports as an import failure
        payload = error_payload(exc, "Runtime.ImportModuleError")
        payload["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        protocol.write(json.dumps({"init_error": payload, "logs": lines.take()}) + "\n")
        return
    protocol.write(json.dumps({"ready": True, "logs": lines.take(), "baseline_mb": baseline_mb}) + "\n")

    for raw in sys.stdin:
        message = json.loads(raw)
        formatter.request_id = message["request_id"]
        reply: dict = {}
        try:
            result = handler_fn(message["event"], Context(message))
            try:
                reply["result"] = json.dumps(result)
            except (TypeError, ValueError) as exc:
                reply["error"] = error_payload(exc, "Runtime.MarshalError", message["request_id"])
                reply["error"]["errorMessage"] = f"Unable to marshal response: {exc}"
        except MemoryError:  # the address space ran out: Lambda's out-of-memory, not the handler's error
            reply["oom"] = True
        except Exception as exc:
            reply["error"] = error_payload(exc, request_id=message["request_id"])
            lines.write(f"[ERROR] {type(exc).__name__}: {exc}\n")
        reply["logs"] = lines.take()
        # What the function used beyond this interpreter's own start-up, plus what
        # Lambda's Python runtime itself takes: comparable with Lambda's figure.
        used = peak_rss_mb() - baseline_mb
        reply["max_rss_mb"] = used + RUNTIME_BASE_MB
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
