"""The target: the one object that says where notebooks and checks talk to.

``Target.local()`` talks to the course's local AWS (a moto server on
localhost, dummy credentials, one attempt per call); ``Target.live()`` talks to
a real account through the normal AWS credential chain. Both give the same
boto3 clients, names and tags, so lab code and checks never care which.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from . import config as cfg
from .errors import LabkitError
from .reach import silence

# Operation-name prefixes that only read. Anything else is a write as far as
# the grader is concerned, and is refused before it is sent.
READ_PREFIXES = ("Describe", "Get", "List", "Head", "Query", "Scan", "BatchGet", "Search", "Lookup", "Select")
# Not named like reads, but they change no resource: signing a test user in to call the API.
READ_OPERATIONS = ("InitiateAuth",)

# How long a client waits, so no learner command hangs on an endpoint that never answers.
# The local AWS answers in milliseconds (a CloudFormation create or a first EC2 call in seconds);
# AWS itself in well under a second. Lambda's Invoke legitimately takes up to the function's
# timeout (at most 900 s, the runner enforces it), so only the lambda client waits that long.
CONNECT_TIMEOUT_S = {"local": 2, "live": 10}
READ_TIMEOUT_S = {"local": 30, "live": 60}
LONG_READ_TIMEOUT_S = {"lambda": 900 + 5}  # Lambda's longest function timeout, plus a margin


class WriteRefused(Exception):
    """A read-only target was asked to send an operation that is not a read."""

    def __init__(self, service: str, operation: str):
        super().__init__(f"{service}:{operation} is not a read; grading is read-only, so it was refused before it was sent")
        self.service = service
        self.operation = operation


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES) or operation in READ_OPERATIONS


class Target:
    """Where to talk to, as whom, and how to name and tag what is built."""

    def __init__(
        self,
        mode: str = "local",
        *,
        prefix: str | None = None,
        region: str | None = None,
        endpoint: str | None = None,
        profile: str | None = None,
        read_only: bool = False,
    ):
        if mode not in ("local", "live", "inprocess"):
            raise LabkitError(f"Unknown target mode {mode!r}; use 'local' or 'live'.")
        saved = cfg.load_settings() if prefix is None or region is None else None
        self.mode = mode
        self.prefix = prefix or saved.prefix
        self.region = region or saved.region
        self.endpoint = endpoint if mode != "live" else None
        if mode == "local" and self.endpoint is None:
            self.endpoint = cfg.local_endpoint()
        self.profile = profile
        self.read_only = read_only
        self._session = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._memo: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []

    # -- construction -----------------------------------------------------
    @classmethod
    def from_settings(cls, *, live: bool | None = None, read_only: bool = False) -> "Target":
        """The target the learner chose (settings file, then environment)."""
        s = cfg.load_settings()
        mode = "live" if (live if live is not None else s.target == "live") else "local"
        return cls(mode, prefix=s.prefix, region=s.region, read_only=read_only)

    def for_grading(self) -> "Target":
        """A read-only twin sharing this target's session (and nothing else)."""
        twin = Target(self.mode, prefix=self.prefix, region=self.region, endpoint=self.endpoint,
                      profile=self.profile, read_only=True)
        twin._session = self._session
        return twin

    @property
    def is_live(self) -> bool:
        return self.mode == "live"

    @property
    def is_local(self) -> bool:
        """True when talking to an emulator (the local server or in-process moto)."""
        return self.mode != "live"

    def describe(self) -> str:
        where = "a live AWS account" if self.is_live else (self.endpoint or "in-process moto")
        return f"{where}, region {self.region}, prefix {self.prefix}"

    # -- clients ----------------------------------------------------------
    def session(self):
        if self._session is None:
            import boto3

            if self.is_live:
                try:
                    session = boto3.Session(profile_name=self.profile, region_name=self.region,
                                            botocore_session=_botocore_session())
                    credentials = session.get_credentials()  # an unknown AWS_PROFILE is only noticed here
                except Exception as exc:  # ProfileNotFound, a config file that does not parse, and friends
                    raise LabkitError(f"The AWS profile could not be loaded ({exc}); check AWS_PROFILE.") from None
                if credentials is None:
                    raise LabkitError(
                        "Live mode found no AWS credentials: run `aws configure` or set AWS_PROFILE, then try again."
                    )
                # An endpoint override (a proxy, another emulator) that accepts and never answers would
                # make every call wait out its timeouts and retries: ask it once, briefly, first.
                override = os.environ.get("AWS_ENDPOINT_URL")
                problem = override and silence(override, "The AWS endpoint set in AWS_ENDPOINT_URL")
                if problem:
                    raise LabkitError(problem)
            else:
                session = boto3.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    region_name=self.region,
                    botocore_session=_botocore_session(),
                )
            self._session = session
        return self._session

    def client(self, service: str, region: str | None = None):
        """A cached boto3 client; read-only targets refuse writes before sending."""
        region = region or self.region
        key = (service, region)
        if key not in self._clients:
            from botocore.config import Config

            where = "live" if self.is_live else "local"
            options: dict[str, Any] = {
                "connect_timeout": CONNECT_TIMEOUT_S[where],
                "read_timeout": LONG_READ_TIMEOUT_S.get(service, READ_TIMEOUT_S[where]),
                # AWS throttles now and then: a few attempts there; the local AWS gets one.
                "retries": {"max_attempts": 3 if self.is_live else 1, "mode": "standard"},
            }
            if self.is_local:
                if service == "s3":
                    options["s3"] = {"addressing_style": "path"}
            from botocore.exceptions import BotoCoreError

            session = self.session()
            try:
                client = session.client(service, region_name=region, endpoint_url=self.endpoint, config=Config(**options))
            except (BotoCoreError, ValueError) as exc:  # AWS_MAX_ATTEMPTS=abc, a broken config file, ...
                raise LabkitError(f"No {service} client could be made from your AWS configuration ({exc}); "
                                  "check the AWS_* variables and ~/.aws/config.") from None
            if self.read_only:
                client.meta.events.register("before-call", _refuse_writes)
            self._clients[key] = client
        return self._clients[key]

    def behaviour_client(self, service: str, *operations: str):
        """A client of the local AWS that may also send ``operations``, which are not reads.

        For behaviour checks that call the learner's code as a client would, with a request
        that must change nothing (Lambda ``Invoke`` with a body the handler has to refuse).
        The live grader's policy allows reads only, so this is the local AWS's alone.
        """
        if self.is_live:
            raise LabkitError(f"A live grader sends only reads; {service}:{', '.join(operations)} is for the local AWS.")
        key = (service, self.region, operations)
        if key not in self._clients:
            client = self.session().client(service, region_name=self.region, endpoint_url=self.endpoint,
                                           config=self.client(service).meta.config)
            if self.read_only:
                client.meta.events.register(
                    "before-call", lambda model, **kw: None if model.name in operations else _refuse_writes(model, **kw))
            self._clients[key] = client
        return self._clients[key]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute a lookup once per target (checks share their discoveries)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def closing(self, close: Callable[[], None]) -> None:
        """Have ``close()`` run when this target's work is done (the grader's processes for learner code)."""
        self._closers.append(close)

    def close(self) -> None:
        """Run what ``closing`` registered, newest first; a failing one does not stop the others."""
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # best effort: each closer also runs when its owner is collected
                pass

    @property
    def account_id(self) -> str:
        return self.memo("account_id", lambda: self.client("sts").get_caller_identity()["Account"])

    def invoke_url(self, api_id: str, stage: str) -> str:
        """Where a deployed REST API stage answers: the local gateway, or API Gateway itself."""
        if self.is_live:
            return f"https://{api_id}.execute-api.{self.region}.amazonaws.com/{stage}"
        from .localaws.extensions.gateway import invoke_url

        return invoke_url(self.endpoint or cfg.local_endpoint(), api_id, stage)

    # -- naming and tagging ----------------------------------------------
    def name(self, *parts: str, limit: int | None = None) -> str:
        """A resource name from the learner's prefix: ``name("site")`` -> ``ada-site``.

        With ``limit`` (some services cap names, DAX at 20 characters) the prefix is cut to fit.
        """
        rest = "".join(f"-{part}" for part in parts)
        prefix = self.prefix if limit is None else self.prefix[:limit - len(rest)].rstrip("-")
        return prefix + rest

    def tag_map(self, lab: str) -> dict[str, str]:
        return {"course": cfg.COURSE_ID, "lab": lab, "learner": self.prefix}

    def tags(self, lab: str) -> list[dict[str, str]]:
        """Course tags in the Key/Value list most AWS APIs take."""
        return [{"Key": k, "Value": v} for k, v in self.tag_map(lab).items()]

    def __repr__(self) -> str:
        return f"Target({self.describe()}{', read-only' if self.read_only else ''})"


_LOADER = None


def _botocore_session():
    """A botocore session reading service models through one loader per process: each Target (the
    grader's twin, a learner module's own labkit.target()) would otherwise parse the same JSON again."""
    import botocore.loaders
    import botocore.session

    global _LOADER
    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return core


def _refuse_writes(model, **_):
    if not is_read(model.name):
        raise WriteRefused(model.service_model.service_name, model.name)
