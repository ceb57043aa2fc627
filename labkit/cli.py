"""What both command lines (``python -m labkit``, ``python -m checks``) share: the last-resort guard.

Bad input is answered where it is read (``config``, ``notebooks``, ...), as a
``LabkitError`` of one sentence. This guard is only the safety net under
that: whatever still escapes becomes one sentence on stderr and exit 2, with
the traceback kept in a log (or shown with ``--debug``), and a stdout that
cannot be written (a full disk, a closed pipe) ends the command cleanly.
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
import traceback
from typing import Callable

from .errors import LabkitError

DEBUG_FLAG = "--debug"
_OUTPUT_ERRORS = (errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT)


def run(main: Callable[[], int], prog: str) -> None:
    """Run ``main`` and exit with its code; never lets a traceback reach the learner unless asked."""
    debug = DEBUG_FLAG in sys.argv[1:] or bool(os.environ.get("LABKIT_DEBUG"))
    sys.argv[1:] = [arg for arg in sys.argv[1:] if arg != DEBUG_FLAG]
    try:
        code = main()
        sys.stdout.flush()  # a full disk shows here, not in the interpreter's exit
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code
        try:
            sys.stdout.flush()
        except OSError as err:
            code = _output_failed(err, prog)
    except LabkitError as exc:
        code = _say(f"{exc}")
    except OSError as exc:
        if exc.filename is None and exc.errno in _OUTPUT_ERRORS:
            code = _output_failed(exc, prog)
        elif debug:
            raise
        else:
            code = _say(f"{prog}: {exc.filename or 'a file'} cannot be used ({exc.strerror or exc}); "
                        f"{_details(prog, exc)}.")
    except Exception as exc:
        if debug:
            raise
        sentence = aws_problem(exc)
        code = _say(sentence) if sentence else _say(f"{prog} stopped on an unexpected error "
                                                   f"({type(exc).__name__}: {_short(exc)}); {_details(prog, exc)}.")
    sys.exit(code)


def aws_problem(exc: BaseException) -> str | None:
    """One sentence for an AWS call that failed in a way the learner can act on, else None."""
    try:
        from botocore import exceptions as bx
    except ImportError:
        return None
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError)):
        return (f"An AWS call could not reach its endpoint ({_short(exc)}); check your network connection, "
                "or that the local AWS runs, and try again.")
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return "No usable AWS credentials were found: run `aws configure` or set AWS_PROFILE, then try again."
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        return (f"AWS refused {exc.operation_name} ({error.get('Code', 'an error')}: "
                f"{_short(error.get('Message') or exc)}); check the account and credentials you use.")
    if isinstance(exc, bx.BotoCoreError):
        return f"An AWS call failed before it was answered ({_short(exc)}); check your AWS configuration."
    return None


def _short(exc) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    return text if len(text) <= 240 else text[:237] + "..."


def _say(sentence: str) -> int:
    sys.stderr.write(" ".join(sentence.split()) + "\n")
    return 2


def _output_failed(exc: OSError, prog: str) -> int:
    # Point stdout at /dev/null so the interpreter's own final flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    if exc.errno == errno.EPIPE:
        return 141  # the reader went away on purpose (`| head`): nothing to say
    return _say(f"{prog} could not write its output ({exc.strerror or exc}); free some space or write it elsewhere.")


def _details(prog: str, exc: BaseException) -> str:
    """Where the traceback went: a log in the state folder, else the temp folder."""
    text = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {prog} {' '.join(sys.argv[1:])}\n"
    text += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for folder in _log_folders():
        path = os.path.join(folder, "errors.log")
        try:
            with open(path, "a", encoding="utf-8") as log:
                log.write(text)
        except OSError:
            continue
        return f"the details are in {path}, or run again with {DEBUG_FLAG} to see them"
    return f"run again with {DEBUG_FLAG} to see the details"


def _log_folders() -> list[str]:
    folders = []
    try:
        from . import config

        folders.append(str(config.state_dir()))
    except Exception:  # the state folder may be what is broken
        pass
    return folders + [tempfile.gettempdir()]
