"""Starts one container process: run as a file by the task runner, then replaced by the container's command.

Before exec it makes the process die with the local AWS (the parent-death signal, so a
killed server leaves no task behind), and sets the container's limits. Its instructions
come in ``LABKIT_LAUNCH`` (JSON), which the container never sees.
"""
import ctypes
import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    plan = json.loads(os.environ.pop("LABKIT_LAUNCH"))
    if plan.get("uid") is not None:  # before the death signal: changing user clears it
        os.setgroups([])
        os.setgid(plan["gid"])
        os.setuid(plan["uid"])
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the runner's own stop is all there is
    if os.getppid() != plan["parent"]:
        sys.exit(137)  # the local AWS died while this was starting
    if plan.get("address_space"):
        try:
            resource.setrlimit(resource.RLIMIT_AS, (plan["address_space"], resource.RLIM_INFINITY))
        except (ValueError, OSError):
            pass
    if plan.get("nofile"):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (plan["nofile"], plan["nofile"]))
        except (ValueError, OSError):
            pass
    argv = plan["argv"]
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        sys.stderr.write(f"CannotStartContainerError: exec {argv[0]}: {exc.strerror}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
