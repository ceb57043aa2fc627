"""The local ECR's registry: the OCI distribution API, so any OCI client can push and pull.

moto stores ECR repositories and ``put_image`` manifests but has no registry endpoint. This one
answers at the local AWS's own port, ``localhost:<port>/v2/...`` (also as
``<account>.dkr.ecr.<region>.localhost:<port>``, which names the region; plain ``localhost`` uses
the one region holding a repository of that name, else the learner's region), with:

- ``GET /v2/``: the ping; without credentials 401 and ECR's Basic challenge;
- ECR's auth: Basic ``AWS:<password>``, the password from ``ecr.get_authorization_token``;
- blobs: HEAD/GET by digest, uploads (POST, PATCH chunks, PUT with the digest; monolithic POST;
  cross-repository mount), kept in ``blobs.py``'s content-addressed store;
- manifests: PUT/GET/HEAD/DELETE by tag or digest. A pushed manifest becomes an ECR image through
  moto's ``put_image`` (bytes exactly as pushed, digest their sha256), so the journal keeps it and
  ``describe_images`` shows it; an immutable repository refuses a changed image under a tag it has;
- ``GET /v2/<name>/tags/list`` (with ``n`` and ``last``);
- errors in the spec's shape, ``{"errors": [{"code", "message", "detail"}]}``.

Blob traffic is data (outside the lock and the journal); a manifest PUT or DELETE is a write.
A SigV4-signed request under ``/v2/`` is an AWS API that lives there (API Gateway v2, SES v2, ...)
and goes on to moto: registry clients send Basic auth or none.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from urllib.parse import parse_qs, quote

from ..blobs import DIGEST, BlobError, Blobs, sha256_digest
from ..http import Request, Response
from ..images import INDEX_TYPES, MANIFEST_TYPES, find_image, registry_password, tag_immutable
from . import Claim, Extension

log = logging.getLogger("labkit.registry")
PREFIX = "/v2/"
# The spec's repository name: path components of lower-case alphanumerics and separators.
NAME = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
ROUTES = [
    ("blob", re.compile(rf"^/v2/(?P<name>{NAME})/blobs/(?P<digest>[^/]+)$")),
    ("uploads", re.compile(rf"^/v2/(?P<name>{NAME})/blobs/uploads/?$")),
    ("upload", re.compile(rf"^/v2/(?P<name>{NAME})/blobs/uploads/(?P<upload>[^/]+)$")),
    ("manifest", re.compile(rf"^/v2/(?P<name>{NAME})/manifests/(?P<reference>[^/]+)$")),
    ("tags", re.compile(rf"^/v2/(?P<name>{NAME})/tags/list$")),
]
REGISTRY_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.localhost(?::\d+)?$")
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
MANIFEST_LIMIT = 4 * 1024 * 1024  # ECR's manifest size limit (4 MiB)


def error(status: int, code: str, message: str, detail=None, headers: dict | None = None) -> Response:
    body = {"errors": [{"code": code, "message": message, "detail": detail if detail is not None else {}}]}
    return Response(status, json.dumps(body).encode(), {"Content-Type": "application/json", **API_VERSION,
                                                         **(headers or {})})


def route(path: str):
    if path in ("/v2", "/v2/"):
        return "ping", {}
    for kind, pattern in ROUTES[1:3] + ROUTES[:1] + ROUTES[3:]:  # uploads first: "uploads" is no digest
        found = pattern.match(path)
        if found:
            return kind, found.groupdict()
    return None, {}


class Registry(Extension):
    name = "registry"

    def __init__(self, host):
        super().__init__(host)
        self.blobs = Blobs(host.state_dir)
        self.blobs.forget_uploads()

    # -- which requests ----------------------------------------------------------
    def claims(self, request: Request) -> Claim | None:
        if not (request.path == "/v2" or request.path.startswith(PREFIX)):
            return None
        if request.scope[1] is not None or "X-Amz-Credential=" in request.query:
            return None  # SigV4-signed: an AWS API under /v2/ (API Gateway v2, SES v2, AppSync, MSK), moto's
        kind, _ = route(request.path)
        if kind == "manifest" and request.method in ("PUT", "DELETE"):
            return Claim.WRITE
        if kind in ("manifest", "tags"):
            return Claim.READ
        return Claim.DATA

    def handle(self, request: Request) -> Response:
        if not self.host.replaying and not self._authorized(request):
            return self._challenge(request)
        kind, parts = route(request.path)
        if kind is None:
            return error(404, "NAME_INVALID", "invalid repository name",
                         {"path": request.path, "rule": "lower-case path components: a-z, 0-9, '.', '_', '-'"})
        if kind == "ping":
            return Response(200, b"{}", {"Content-Type": "application/json", **API_VERSION})
        account, region = self._where(request, parts["name"])
        if not self._repository_exists(account, region, parts["name"]):
            return error(404, "NAME_UNKNOWN", "repository name not known to registry",
                         {"name": parts["name"], "message": f"The repository with name '{parts['name']}' does not "
                          f"exist in the registry with id '{account}' (region {region})"})
        query = {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        handler = getattr(self, f"_{kind}")
        return handler(request, account, region, query=query, **parts)

    # -- auth ---------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        header = request.header("Authorization")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        account, _ = self._where(request, None)
        return user == "AWS" and hmac.compare_digest(password.encode(), registry_password(account).encode())

    def _challenge(self, request: Request) -> Response:
        account, region = self._where(request, None)
        realm = f"https://{account}.dkr.ecr.{region}.amazonaws.com/"
        given = "given" if request.header("Authorization") else "missing"
        return error(401, "UNAUTHORIZED", "authentication required",
                     {"message": f"Credentials are {given} or wrong: log in as AWS with the password from "
                                 "ecr.get_authorization_token."},
                     {"WWW-Authenticate": f'Basic realm="{realm}",service="ecr.amazonaws.com"'})

    # -- where: account and region ---------------------------------------------
    def _where(self, request: Request, name: str | None) -> tuple[str, str]:
        from ...config import LOCAL_ACCOUNT_ID

        host = (request.environ.get("HTTP_HOST") or "").lower()
        found = REGISTRY_HOST.match(host)
        if found:
            return found.group("account"), found.group("region")
        if name:
            regions = self.host.read_backend(lambda: _regions_holding(LOCAL_ACCOUNT_ID, name))
            if len(regions) == 1:
                return LOCAL_ACCOUNT_ID, regions[0]
        return LOCAL_ACCOUNT_ID, _learner_region()

    def _repository_exists(self, account: str, region: str, name: str) -> bool:
        return self.host.read_backend(lambda: name in _backend(account, region).repositories)

    # -- blobs ---------------------------------------------------------------------
    def _blob(self, request, account, region, *, name, digest, query):
        if not DIGEST.match(digest):
            return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                         {"digest": digest, "message": "only sha256:<64 hex> digests are accepted"})
        if request.method not in ("GET", "HEAD"):
            return error(405, "UNSUPPORTED", "The operation is unsupported.",
                         {"message": "blobs are removed with their images (batch_delete_image)"})
        if not self.blobs.has(digest):
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        size = self.blobs.size(digest)
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Content-Length": str(size), **API_VERSION}
        return Response(200, b"" if request.method == "HEAD" else self.blobs.read(digest), headers)

    def _uploads(self, request, account, region, *, name, query):
        if request.method != "POST":
            return error(405, "UNSUPPORTED", "The operation is unsupported.")
        mount = query.get("mount")
        if mount and self.blobs.has(mount):  # the store is shared: a blob any repository has is mountable
            return self._created(name, mount)
        digest = query.get("digest")
        if digest:  # monolithic: the whole blob in this one request
            try:
                self.blobs.put(request.body, digest)
            except BlobError as exc:
                return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                             {"digest": digest, "message": str(exc)})
            return self._created(name, digest)
        upload = self.blobs.start_upload()
        if request.body:
            self.blobs.append(upload, request.body)
        return self._accepted(name, upload)

    def _upload(self, request, account, region, *, name, upload, query):
        size = self.blobs.upload_size(upload)
        if size is None:
            return error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"upload": upload})
        if request.method == "GET":
            return Response(204, b"", {"Location": _upload_location(name, upload), "Range": _range(size),
                                       "Docker-Upload-UUID": upload, **API_VERSION})
        if request.method == "DELETE":
            self.blobs.cancel(upload)
            return Response(204, b"", dict(API_VERSION))
        if request.method not in ("PATCH", "PUT"):
            return error(405, "UNSUPPORTED", "The operation is unsupported.")
        start = None
        given = request.header("Content-Range")
        if given:
            found = re.match(r"^(?:bytes[ =])?(\d+)-(\d+)$", given.strip())
            if not found or int(found.group(2)) - int(found.group(1)) + 1 != len(request.body):
                return error(416, "BLOB_UPLOAD_INVALID", "blob upload invalid",
                             {"Content-Range": given, "message": "the range does not describe the chunk sent"},
                             {"Location": _upload_location(name, upload), "Range": _range(size)})
            start = int(found.group(1))
        if request.body or start is not None:
            try:
                size = self.blobs.append(upload, request.body, start)
            except BlobError as exc:
                return error(416, "BLOB_UPLOAD_INVALID", "blob upload invalid", {"message": str(exc)},
                             {"Location": _upload_location(name, upload), "Range": _range(size)})
        if request.method == "PATCH":
            return self._accepted(name, upload, size)
        digest = query.get("digest")
        if not digest:
            return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                         {"message": "the closing PUT must name the blob's digest (?digest=sha256:...)"})
        try:
            self.blobs.finish(upload, digest)
        except BlobError as exc:
            return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                         {"digest": digest, "message": str(exc)})
        return self._created(name, digest)

    def _created(self, name: str, digest: str) -> Response:
        return Response(201, b"", {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest,
                                   "Content-Length": "0", **API_VERSION})

    def _accepted(self, name: str, upload: str, size: int | None = None) -> Response:
        size = self.blobs.upload_size(upload) if size is None else size
        return Response(202, b"", {"Location": _upload_location(name, upload), "Range": _range(size or 0),
                                   "Docker-Upload-UUID": upload, "Content-Length": "0", **API_VERSION})

    # -- manifests -----------------------------------------------------------------
    def _manifest(self, request, account, region, *, name, reference, query):
        by_digest = reference.startswith("sha256:")
        if by_digest and not DIGEST.match(reference):
            return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                         {"digest": reference})
        if not by_digest and not TAG.match(reference):
            return error(400, "TAG_INVALID", "manifest tag did not match URI", {"tag": reference})
        if request.method == "PUT":
            return self._put_manifest(request, account, region, name, reference, by_digest)
        repository = _backend(account, region).repositories[name]
        image = find_image(repository, reference)
        if image is None:
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown",
                         {"name": name, "reference": reference,
                          "message": f"The image with {'digest' if by_digest else 'tag'} {reference!r} does not "
                                     f"exist within the repository with name '{name}'"})
        if request.method == "DELETE":
            _backend(account, region).batch_delete_image(repository_name=name, registry_id=account,
                                                         image_ids=[{"imageDigest": image.get_image_digest()}])
            return Response(202, b"", dict(API_VERSION))
        if request.method not in ("GET", "HEAD"):
            return error(405, "UNSUPPORTED", "The operation is unsupported.")
        body = image.image_manifest.encode()
        headers = {"Content-Type": image.image_manifest_media_type or json.loads(body).get("mediaType", ""),
                   "Docker-Content-Digest": image.get_image_digest(), "Content-Length": str(len(body)),
                   **API_VERSION}
        return Response(200, b"" if request.method == "HEAD" else body, headers)

    def _put_manifest(self, request, account, region, name, reference, by_digest) -> Response:
        body = request.body
        digest = sha256_digest(body)
        if by_digest and reference != digest:
            return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                         {"digest": reference, "message": f"the manifest sent hashes to {digest}"})
        if len(body) > MANIFEST_LIMIT:
            return error(400, "MANIFEST_INVALID", "manifest invalid", {"message": "ECR takes manifests up to 4 MiB"})
        try:
            manifest = json.loads(body)
            text = body.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return error(400, "MANIFEST_INVALID", "manifest invalid", {"message": "the manifest is not JSON"})
        media_type = (request.header("Content-Type").split(";")[0].strip()
                      or (manifest.get("mediaType") if isinstance(manifest, dict) else "") or "")
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            return error(400, "MANIFEST_INVALID", "manifest invalid",
                         {"mediaType": media_type, "accepted": list(MANIFEST_TYPES + INDEX_TYPES)})
        problem = self._manifest_problem(manifest, media_type, account, region, name)
        if problem is not None:
            return problem
        backend = _backend(account, region)
        repository = backend.repositories[name]
        tag = None if by_digest else reference
        same = find_image(repository, digest)
        if tag is not None:
            held = find_image(repository, tag)
            if held is not None and held.get_image_digest() == digest:
                return self._stored(name, reference, digest)  # a re-push of the same image: nothing changes
            if held is not None and tag_immutable(repository, tag):
                # ECR's refusal of a changed image under an immutable tag (the registry's TAG_INVALID).
                return error(400, "TAG_INVALID", "manifest tag did not match URI",
                             {"message": f"The image tag '{tag}' already exists in the '{name}' repository and "
                                         "cannot be overwritten because the repository is immutable."})
        elif same is not None:
            return self._stored(name, reference, digest)
        try:
            backend.put_image(repository_name=name, image_manifest=text, image_tag=tag,
                              image_manifest_mediatype=media_type, digest=digest)
        except Exception as exc:  # moto's own refusals (an ImageAlreadyExists under exclusion filters, ...)
            return error(400, "MANIFEST_INVALID", "manifest invalid", {"message": str(exc)})
        return self._stored(name, reference, digest)

    def _manifest_problem(self, manifest, media_type, account, region, name) -> Response | None:
        if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
            return error(400, "MANIFEST_INVALID", "manifest invalid", {"message": "schemaVersion must be 2"})
        if media_type in INDEX_TYPES:
            children = manifest.get("manifests")
            if not isinstance(children, list):
                return error(400, "MANIFEST_INVALID", "manifest invalid", {"message": "an index lists manifests"})
            repository = _backend(account, region).repositories[name]
            for child in children:
                digest = child.get("digest") if isinstance(child, dict) else None
                if not digest or find_image(repository, digest) is None:
                    return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
            return None
        descriptors = [manifest.get("config")] + list(manifest.get("layers") or [])
        if not isinstance(manifest.get("config"), dict) or not isinstance(manifest.get("layers"), list):
            return error(400, "MANIFEST_INVALID", "manifest invalid", {"message": "a manifest has config and layers"})
        for descriptor in descriptors:
            digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
            if not isinstance(digest, str) or not DIGEST.match(digest):
                return error(400, "MANIFEST_INVALID", "manifest invalid", {"descriptor": descriptor})
            if self.host.replaying:
                continue  # the state is rebuilt as it was acknowledged, even if a blob went missing since
            if not self.blobs.has(digest):
                return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
            if isinstance(descriptor.get("size"), int) and descriptor["size"] != self.blobs.size(digest):
                return error(400, "SIZE_INVALID", "provided length did not match content length",
                             {"digest": digest, "size": descriptor["size"], "stored": self.blobs.size(digest)})
        return None

    def _stored(self, name: str, reference: str, digest: str) -> Response:
        return Response(201, b"", {"Location": f"/v2/{name}/manifests/{quote(reference, safe=':')}",
                                   "Docker-Content-Digest": digest, "Content-Length": "0", **API_VERSION})

    # -- tags ------------------------------------------------------------------------
    def _tags(self, request, account, region, *, name, query):
        if request.method not in ("GET", "HEAD"):
            return error(405, "UNSUPPORTED", "The operation is unsupported.")
        repository = _backend(account, region).repositories[name]
        tags = sorted({t for image in repository.images for t in image.image_tags if t})
        last = query.get("last")
        if last:
            tags = [t for t in tags if t > last]
        headers = {"Content-Type": "application/json", **API_VERSION}
        n = query.get("n")
        if n is not None and n.isdigit():
            more = len(tags) > int(n)
            tags = tags[: int(n)]
            if more and tags:
                headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={quote(tags[-1])}>; rel="next"'
        return Response(200, json.dumps({"name": name, "tags": tags}).encode(), headers)

    def status(self) -> dict:
        return {"blobs": len(self.blobs.digests())}


def _upload_location(name: str, upload: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload}"


def _range(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _backend(account: str, region: str):
    from moto.ecr.models import ecr_backends

    return ecr_backends[account][region]


def _regions_holding(account: str, name: str) -> list[str]:
    from moto.ecr.models import ecr_backends

    return sorted(region for region, backend in ecr_backends[account].items() if name in backend.repositories)


def _learner_region() -> str:
    from ... import config as cfg

    try:
        return cfg.load_settings().region
    except Exception:  # unreadable settings: the course's default region
        return cfg.DEFAULT_REGION


EXTENSION = Registry
