"""The local ECR's registry endpoint speaks the OCI distribution API against the real local AWS process.

Every request here is raw HTTP, as the spec writes its flows; digests are computed here as the spec
says (sha256 of the bytes), never taken from the server.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

from labkit.config import REPO_ROOT


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Raw:
    """HTTP to the local AWS's registry: one request, the answer as (status, headers, body)."""

    def __init__(self, port: int, authorization: str | None):
        self.port, self.authorization = port, authorization

    def __call__(self, method, path, body=b"", headers=None, host=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": host or f"localhost:{self.port}", "Content-Length": str(len(body)), **(headers or {})}
        if self.authorization:
            sent["Authorization"] = self.authorization
        try:
            connection.request(method, path, body=body or None, headers=sent)
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()


def code(body: bytes) -> str:
    return json.loads(body)["errors"][0]["code"]


@pytest.fixture
def registry(local, local_target):
    ecr = local_target.client("ecr")
    ecr.create_repository(repositoryName="ada-catalog")
    ecr.create_repository(repositoryName="ada-fixed", imageTagMutability="IMMUTABLE")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return Raw(local.port, f"Basic {token}")


def layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_blob_monolithic(registry, name: str, data: bytes) -> str:
    digest = digest_of(data)
    status, headers, body = registry("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data,
                                     {"Content-Type": "application/octet-stream"})
    assert status == 201, body
    assert headers["docker-content-digest"] == digest
    return digest


def manifest_for(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(b),
                    "size": len(b)} for b in layers]}, indent=3).encode()  # indented: bytes are kept as pushed


def push_image(registry, name: str, tag: str, text: bytes = b"hello") -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["python", "app.py"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    blob = layer({"app/app.py": text})
    push_blob_monolithic(registry, name, blob)
    push_blob_monolithic(registry, name, config)
    manifest = manifest_for(config, [blob])
    status, headers, body = registry("PUT", f"/v2/{name}/manifests/{tag}", manifest, {"Content-Type": OCI_MANIFEST})
    assert status == 201, body
    assert headers["docker-content-digest"] == digest_of(manifest)
    return manifest


def test_the_ping_challenges_with_ecr_basic_auth_and_refuses_wrong_credentials(registry, local):
    status, headers, body = Raw(local.port, None)("GET", "/v2/")
    assert status == 401 and code(body) == "UNAUTHORIZED"
    assert headers["www-authenticate"].startswith('Basic realm="https://123456789012.dkr.ecr.')
    wrong = "Basic " + base64.b64encode(b"AWS:not-the-token").decode()
    assert Raw(local.port, wrong)("GET", "/v2/")[0] == 401
    assert Raw(local.port, wrong)("GET", "/v2/ada-catalog/tags/list")[0] == 401  # not only the ping
    status, headers, _ = registry("GET", "/v2/")
    assert status == 200 and headers["docker-distribution-api-version"] == "registry/2.0"
    for method, path in (("POST", "/v2/ada-catalog/blobs/uploads/"), ("PUT", "/v2/ada-catalog/manifests/v1")):
        assert Raw(local.port, None)(method, path, b"{}")[0] == 401  # writes need the login too


def test_a_chunked_upload_follows_the_spec_and_is_verified_by_digest(registry, local):
    data = bytes(range(256)) * 40
    digest = digest_of(data)
    status, headers, _ = registry("POST", "/v2/ada-catalog/blobs/uploads/")
    assert status == 202
    location = headers["location"]
    status, headers, _ = registry("PATCH", location, data[:4000], {"Content-Range": "0-3999",
                                                                   "Content-Type": "application/octet-stream"})
    assert status == 202 and headers["range"] == "0-3999"
    # a chunk that does not start where the upload ends is refused, and the upload keeps what it had
    status, headers, body = registry("PATCH", location, data[4000:5000], {"Content-Range": "5000-5999"})
    assert status == 416 and headers["range"] == "0-3999"
    status, headers, _ = registry("PATCH", headers["location"], data[4000:], {"Content-Range": f"4000-{len(data) - 1}"})
    assert status == 202
    # the closing PUT with a wrong digest is refused
    wrong = digest_of(b"other")
    status, _, body = registry("PUT", f"{headers['location']}?digest={wrong}")
    assert status == 400 and code(body) == "DIGEST_INVALID"
    # a fresh upload, closed properly (the last bytes in the PUT itself)
    status, headers, _ = registry("POST", "/v2/ada-catalog/blobs/uploads/")
    registry("PATCH", headers["location"], data[:100])
    status, headers, _ = registry("PUT", f"{headers['location']}?digest={digest}", data[100:])
    assert status == 201 and headers["docker-content-digest"] == digest
    assert headers["location"] == f"/v2/ada-catalog/blobs/{digest}"
    status, headers, body = registry("HEAD", f"/v2/ada-catalog/blobs/{digest}")
    assert status == 200 and headers["content-length"] == str(len(data)) and body == b""
    status, _, body = registry("GET", f"/v2/ada-catalog/blobs/{digest}")
    assert status == 200 and body == data
    status, _, body = registry("GET", f"/v2/ada-catalog/blobs/{digest_of(b'never pushed')}")
    assert status == 404 and code(body) == "BLOB_UNKNOWN"
    stored = local.home / "registry" / "blobs" / "sha256" / digest.split(":")[1]
    assert stored.read_bytes() == data and stored.stat().st_mode & 0o777 == 0o600


def test_a_manifest_lands_in_ecr_with_its_real_digest_and_comes_back_byte_for_byte(registry, local_target):
    manifest = push_image(registry, "ada-catalog", "v1")
    digest = digest_of(manifest)
    for reference in ("v1", digest):
        status, headers, body = registry("GET", f"/v2/ada-catalog/manifests/{reference}",
                                         headers={"Accept": OCI_MANIFEST})
        assert (status, body, headers["content-type"], headers["docker-content-digest"]) == (
            200, manifest, OCI_MANIFEST, digest)
    status, headers, body = registry("HEAD", "/v2/ada-catalog/manifests/v1")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(manifest))
    ecr = local_target.client("ecr")
    detail = ecr.describe_images(repositoryName="ada-catalog")["imageDetails"][0]
    assert (detail["imageDigest"], detail["imageTags"], detail["imageManifestMediaType"]) == (digest, ["v1"], OCI_MANIFEST)
    got = ecr.batch_get_image(repositoryName="ada-catalog", imageIds=[{"imageTag": "v1"}])["images"][0]
    assert got["imageManifest"].encode() == manifest
    status, _, body = registry("GET", "/v2/ada-catalog/tags/list")
    assert json.loads(body) == {"name": "ada-catalog", "tags": ["v1"]}
    status, _, body = registry("GET", "/v2/ada-catalog/manifests/v2")
    assert status == 404 and code(body) == "MANIFEST_UNKNOWN"


def test_uploads_can_be_asked_about_cancelled_and_mounted_from_another_repository(registry):
    status, headers, _ = registry("POST", "/v2/ada-catalog/blobs/uploads/")
    location = headers["location"]
    registry("PATCH", location, b"12345")
    status, headers, _ = registry("GET", location)
    assert status == 204 and headers["range"] == "0-4" and headers["docker-upload-uuid"] in location
    assert registry("DELETE", location)[0] == 204
    status, _, body = registry("GET", location)
    assert status == 404 and code(body) == "BLOB_UPLOAD_UNKNOWN"
    digest = push_blob_monolithic(registry, "ada-catalog", b"shared layer")
    status, headers, _ = registry("POST", f"/v2/ada-fixed/blobs/uploads/?mount={digest}&from=ada-catalog")
    assert status == 201 and headers["location"] == f"/v2/ada-fixed/blobs/{digest}"
    status, headers, _ = registry("POST", f"/v2/ada-fixed/blobs/uploads/?mount={digest_of(b'nowhere')}&from=ada-catalog")
    assert status == 202 and "/blobs/uploads/" in headers["location"]  # not mountable: an upload starts instead


def test_an_index_names_manifests_the_repository_holds_and_a_delete_removes_the_image(registry, local_target):
    child = push_image(registry, "ada-catalog", "amd64")
    index_for = lambda digest: json.dumps({  # noqa: E731
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(child),
                       "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    index_type = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
    status, _, body = registry("PUT", "/v2/ada-catalog/manifests/v1", index_for(digest_of(b"unknown")), index_type)
    assert status == 400 and code(body) == "MANIFEST_BLOB_UNKNOWN"
    index = index_for(digest_of(child))
    status, headers, _ = registry("PUT", "/v2/ada-catalog/manifests/v1", index, index_type)
    assert status == 201 and headers["docker-content-digest"] == digest_of(index)
    status, headers, body = registry("GET", "/v2/ada-catalog/manifests/v1")
    assert (status, body, headers["content-type"]) == (200, index, index_type["Content-Type"])
    assert registry("DELETE", f"/v2/ada-catalog/manifests/{digest_of(index)}")[0] == 202
    assert registry("GET", "/v2/ada-catalog/manifests/v1")[0] == 404
    left = local_target.client("ecr").describe_images(repositoryName="ada-catalog")["imageDetails"]
    assert [i["imageDigest"] for i in left] == [digest_of(child)]


def test_a_manifest_naming_a_missing_blob_or_the_wrong_digest_is_refused(registry, local_target):
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    push_blob_monolithic(registry, "ada-catalog", config)
    missing = manifest_for(config, [b"a layer never pushed"])
    status, _, body = registry("PUT", "/v2/ada-catalog/manifests/v1", missing, {"Content-Type": OCI_MANIFEST})
    assert status == 400 and code(body) == "MANIFEST_BLOB_UNKNOWN"
    good = manifest_for(config, [])
    status, _, body = registry("PUT", f"/v2/ada-catalog/manifests/{digest_of(b'x')}", good,
                               {"Content-Type": OCI_MANIFEST})
    assert status == 400 and code(body) == "DIGEST_INVALID"
    status, _, _ = registry("PUT", f"/v2/ada-catalog/manifests/{digest_of(good)}", good, {"Content-Type": OCI_MANIFEST})
    assert status == 201  # by digest: an untagged image
    assert local_target.client("ecr").describe_images(repositoryName="ada-catalog")["imageDetails"][0]["imageDigest"] \
        == digest_of(good)


def test_an_immutable_tag_refuses_a_changed_image_as_ecr_does_but_takes_the_same_one_again(registry, local_target):
    first = push_image(registry, "ada-fixed", "v1", b"one")
    assert push_image(registry, "ada-fixed", "v1", b"one") == first  # the same image again: accepted, unchanged
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    changed_layer = layer({"app/app.py": b"two"})
    push_blob_monolithic(registry, "ada-fixed", changed_layer)
    push_blob_monolithic(registry, "ada-fixed", config)
    changed = manifest_for(config, [changed_layer])
    status, _, body = registry("PUT", "/v2/ada-fixed/manifests/v1", changed, {"Content-Type": OCI_MANIFEST})
    assert status == 400 and code(body) == "TAG_INVALID"
    assert "cannot be overwritten because the repository is immutable" in json.loads(body)["errors"][0]["detail"]["message"]
    images = local_target.client("ecr").describe_images(repositoryName="ada-fixed")["imageDetails"]
    assert [i["imageDigest"] for i in images] == [digest_of(first)]
    # the journal holds each accepted manifest PUT, never the refused one, and never blob bytes
    from labkit import localaws

    lines = [json.loads(line) for line in localaws.read_journal().splitlines() if line.strip()]
    registry_lines = [(line["method"], line["url"].split("/v2/", 1)[1]) for line in lines if "/v2/" in line["url"]]
    assert registry_lines == [("PUT", "ada-fixed/manifests/v1")] * 2
    # a mutable repository moves the tag to the changed image
    push_image(registry, "ada-catalog", "v1", b"one")
    moved = push_image(registry, "ada-catalog", "v1", b"two")
    tagged = local_target.client("ecr").describe_images(repositoryName="ada-catalog", imageIds=[{"imageTag": "v1"}])
    assert tagged["imageDetails"][0]["imageDigest"] == digest_of(moved)


def test_a_repository_that_does_not_exist_is_name_unknown(registry):
    for method, path in (("GET", "/v2/ada-nope/tags/list"), ("POST", "/v2/ada-nope/blobs/uploads/"),
                         ("PUT", "/v2/ada-nope/manifests/v1")):
        status, _, body = registry(method, path, b"{}" if method == "PUT" else b"")
        assert status == 404 and code(body) == "NAME_UNKNOWN", (method, path)
    status, _, body = registry("GET", "/v2/Not_Valid/tags/list")
    assert status == 404 and code(body) == "NAME_INVALID"


def test_the_region_comes_from_the_registry_host_name(registry, local, local_target):
    west = local_target.client("ecr", "eu-west-1")
    west.create_repository(repositoryName="ada-west")
    host = f"123456789012.dkr.ecr.eu-west-1.localhost:{local.port}"
    status, _, _ = registry("GET", "/v2/ada-west/tags/list", host=host)
    assert status == 200
    status, _, body = registry("GET", "/v2/ada-catalog/tags/list", host=host)  # that repository is in us-east-1
    assert status == 404 and code(body) == "NAME_UNKNOWN"


def test_a_pushed_image_survives_down_up_and_a_snapshot_restore(registry, local):
    from labkit import localaws

    manifest = push_image(registry, "ada-catalog", "v1")
    localaws.save("with-image")
    localaws.down()
    localaws.up()
    status, _, body = registry("GET", "/v2/ada-catalog/manifests/v1")
    assert (status, body) == (200, manifest)
    localaws.reset()
    assert registry("GET", "/v2/ada-catalog/manifests/v1")[0] == 404  # the repository is gone with the reset
    localaws.restore("with-image")
    status, _, body = registry("GET", "/v2/ada-catalog/manifests/v1")
    assert (status, body) == (200, manifest)
    blob = json.loads(manifest)["layers"][0]["digest"]
    assert registry("GET", f"/v2/ada-catalog/blobs/{blob}")[0] == 200  # blobs outlive the reset


def test_labkit_push_builds_and_pushes_the_catalog_service(local, local_target):
    from labkit import images
    from labkit.assets import ASSETS

    image = images.build(ASSETS / "catalog-service")
    uri = local_target.client("ecr").create_repository(repositoryName="ada-catalog")["repository"]["repositoryUri"]
    said = []
    assert images.push(image, uri, local_target, tag="v1", progress=said.append) == image.digest
    assert said[-1] == f"pushed ada-catalog:v1 as {image.digest}"
    detail = local_target.client("ecr").describe_images(repositoryName="ada-catalog")["imageDetails"][0]
    assert detail["imageDigest"] == image.digest
    # the command line: a repository that does not exist is one sentence and exit 2
    run = subprocess.run([sys.executable, "-m", "labkit", "image", "push", str(ASSETS / "catalog-service"),
                          f"{uri.rsplit('/', 1)[0]}/ada-missing:v1"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("The registry refused") and "ada-missing" in run.stderr


RESOLVE = textwrap.dedent('''
    import base64, json, sys
    from pathlib import Path
    from werkzeug.test import Client
    from labkit import images
    from labkit.assets import ASSETS
    from labkit.localaws.app import build_app
    from labkit.localaws import images as server_images

    state = Path(sys.argv[1])
    app = build_app(state / "journal.ndjson", "http://localhost:1")
    client = Client(app)
    auth = "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=x"
    client.post("/", data=json.dumps({"repositoryName": "ada-catalog"}), headers={
        "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
        "Content-Type": "application/x-amz-json-1.1", "Authorization": auth})
    basic = "Basic " + base64.b64encode(b"AWS:123456789012-auth-token").decode()
    image = images.build(ASSETS / "catalog-service")
    for digest, blob in image.blobs():
        assert client.post(f"/v2/ada-catalog/blobs/uploads/?digest={digest}", data=blob,
                           headers={"Authorization": basic}).status_code == 201
    assert client.put("/v2/ada-catalog/manifests/v1", data=image.manifest, headers={
        "Authorization": basic, "Content-Type": images.OCI_MANIFEST}).status_code == 201
    out = {}
    for ref in ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog:v1",
                f"123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog@{image.digest}",
                "localhost:4566/ada-catalog:v1"):
        found = server_images.resolve(app, ref)
        out[ref] = [found.digest, found.config.get("Cmd"), found.config.get("User"), len(found.layers)]
    root = server_images.unpack(found, state / "roots")
    out["files"] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    out["again"] = str(server_images.unpack(found, state / "roots")) == str(root)
    out["digest"] = image.digest
    for ref in ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog:v9",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-other:v1", "docker.io/library/python:3.12"):
        try:
            server_images.resolve(app, ref)
        except server_images.ImageError as exc:
            out[ref] = str(exc)
    print(json.dumps(out))
''')


def test_resolve_finds_a_pushed_image_by_tag_or_digest_and_unpack_lays_it_out(tmp_path):
    # In its own process: building the app patches moto for the whole process.
    run = subprocess.run([sys.executable, "-c", RESOLVE, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for ref in ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog:v1",
                f"123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog@{out['digest']}",
                "localhost:4566/ada-catalog:v1"):
        assert out[ref] == [out["digest"], ["python", "app.py"], "10001:10001", 2], ref
    assert out["files"] == ["app", "app/app.py", "app/items.json", "app/requirements.txt"]
    assert out["again"]
    assert "has no image v9" in out["123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog:v9"]
    assert "ada-other does not exist" in out["123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-other:v1"]
    assert "is not an image in the local ECR" in out["docker.io/library/python:3.12"]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_skopeo_pushes_an_oci_layout_to_the_local_registry(local, local_target, tmp_path):
    from labkit import images
    from labkit.assets import ASSETS

    image = images.build(ASSETS / "catalog-service")
    image.save(tmp_path / "layout")
    ecr = local_target.client("ecr")
    ecr.create_repository(repositoryName="ada-catalog")
    password = base64.b64decode(ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]).decode()
    run = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", password,
                          "--preserve-digests", f"oci:{tmp_path / 'layout'}",
                          f"docker://localhost:{local.port}/ada-catalog:v1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    detail = ecr.describe_images(repositoryName="ada-catalog")["imageDetails"][0]
    assert detail["imageDigest"] == image.digest and detail["imageTags"] == ["v1"]
    # and pulls it back, byte for byte
    run = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--src-creds", password,
                          f"docker://localhost:{local.port}/ada-catalog:v1", f"oci:{tmp_path / 'pulled'}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    pulled = images.BuiltImage.load(tmp_path / "pulled")
    assert (pulled.manifest, pulled.config, pulled.layers) == (image.manifest, image.config, image.layers)


def test_a_lockdown_refuses_pushes_and_uploads_but_not_pulls(registry, local):
    from labkit import localaws

    manifest = push_image(registry, "ada-catalog", "v1")
    with localaws.grading_session(lockdown=True):
        for method, path in (("POST", "/v2/ada-catalog/blobs/uploads/"),
                             ("POST", f"/v2/ada-catalog/blobs/uploads/?digest={digest_of(b'x')}"),
                             ("PUT", "/v2/ada-catalog/manifests/v2")):
            status, _, body = registry(method, path, b"x" if "digest" in path else manifest)
            assert status == 403 and b"read-only while the grader runs learner code" in body, path
        assert registry("GET", "/v2/ada-catalog/manifests/v1")[:3:2] == (200, manifest)
    status, _, body = registry("GET", "/v2/ada-catalog/tags/list")
    assert json.loads(body)["tags"] == ["v1"]


def test_aws_apis_under_v2_still_reach_moto(registry, local_target):
    # API Gateway v2 lives at /v2/apis: a signed request there is not the registry's
    api = local_target.client("apigatewayv2").create_api(Name="ada-http", ProtocolType="HTTP")
    assert local_target.client("apigatewayv2").get_api(ApiId=api["ApiId"])["Name"] == "ada-http"
