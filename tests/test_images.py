"""Images without a container engine: labkit's Dockerfile build, the unpacker's safety, the catalog service."""
from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labkit import images
from labkit.assets import ASSETS
from labkit.config import REPO_ROOT
from labkit.localaws.images import Image, ImageError, unpack

CATALOG = ASSETS / "catalog-service"


def context(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "ctx"
    folder.mkdir(exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def layer_members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        return archive.getmembers()


# -- build -------------------------------------------------------------------------------------

def test_the_same_sources_give_the_same_digest_and_a_changed_source_another(tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(CATALOG), str(copy)], check=True)
    first = images.build(CATALOG)
    os.utime(copy / "app.py", (1, 1))  # times and the folder's place are not part of the image
    assert images.build(copy).digest == first.digest
    (copy / "app.py").write_text((copy / "app.py").read_text() + "\n# changed\n")
    assert images.build(copy).digest != first.digest


def test_the_catalog_image_holds_the_apps_layers_and_the_base_as_a_reference():
    image = images.build(CATALOG)
    manifest = json.loads(image.manifest)
    config = json.loads(image.config)
    assert manifest["annotations"][images.BASE_ANNOTATION] == "docker.io/library/python:3.12-slim"
    assert [layer["digest"] for layer in manifest["layers"]] == [d for d, _ in image.layers]
    assert manifest["config"]["digest"] == image.config_digest
    settings = config["config"]
    assert settings["User"] == "10001:10001" and settings["ExposedPorts"] == {"8080/tcp": {}}
    assert settings["Cmd"] == ["python", "app.py"] and settings["WorkingDir"] == "/app"
    assert settings["Healthcheck"]["Test"][0] == "CMD" and settings["Healthcheck"]["Interval"] == 30 * 10**9
    assert settings["Labels"][images.REQUIREMENTS_LABEL] == "boto3>=1.34"
    assert len(config["rootfs"]["diff_ids"]) == len(image.layers) == 2
    members = layer_members(image.layers[1][1])
    assert [m.name for m in members] == ["app", "app/app.py", "app/items.json"]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}


def test_an_unsupported_instruction_stops_the_build_with_one_sentence_naming_its_line(tmp_path):
    ctx = context(tmp_path, "FROM python:3.12-slim\nWORKDIR /app\nVOLUME /data\n")
    with pytest.raises(images.BuildError) as refused:
        images.build(ctx)
    said = str(refused.value)
    assert said.startswith("Dockerfile line 3 (VOLUME): VOLUME is not supported here; labkit builds FROM")
    assert said.count(". ") == 0 and said.endswith("build anything else with Docker.")


def test_run_is_only_pip_install_and_checked_against_the_courses_python(tmp_path):
    ctx = context(tmp_path, "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y curl\n")
    with pytest.raises(images.BuildError, match=r"line 2 \(RUN\): RUN is supported only as a single `pip install"):
        images.build(ctx)
    ctx = context(tmp_path, "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
                            "RUN pip install -r requirements.txt\n", {"requirements.txt": "no-such-package-zz==1\n"})
    with pytest.raises(images.BuildError, match="no-such-package-zz is not installed in the course's Python"):
        images.build(ctx)
    ctx = context(tmp_path, "FROM python:3.12-slim\nRUN pip install 'boto3<1'\n")
    with pytest.raises(images.BuildError, match="which does not satisfy"):
        images.build(ctx)
    ctx = context(tmp_path, "FROM python:3.12-slim\nRUN pip install -r requirements.txt\n")
    with pytest.raises(images.BuildError, match="COPY it before this RUN"):
        images.build(ctx)


def test_copy_honours_dockerignore_args_env_and_a_numeric_chown(tmp_path):
    ctx = context(tmp_path, "ARG APP=/srv\nFROM python:3.12-slim\nARG APP=/opt/app\nENV HOME_DIR=$APP\n"
                            "COPY --chown=10001:10001 --chmod=0640 src/ ${HOME_DIR}/\n",
                  {"src/keep.py": "x", "src/secret.env": "k", "src/sub/more.py": "y", ".dockerignore": "**/*.env\n"})
    image = images.build(ctx)
    members = layer_members(image.layers[0][1])
    files = {m.name: m for m in members if m.isfile()}
    assert sorted(files) == ["opt/app/keep.py", "opt/app/sub/more.py"]
    assert {(m.uid, m.gid, m.mode) for m in files.values()} == {(10001, 10001, 0o640)}
    assert json.loads(image.config)["config"]["Env"] == ["HOME_DIR=/opt/app"]
    bare = images.build(context(tmp_path, "ARG APP=/srv\nFROM python:3.12-slim\nARG APP\nWORKDIR $APP\n"))
    assert json.loads(bare.config)["config"]["WorkingDir"] == "/srv"  # a bare ARG takes the value from before FROM
    given = images.build(context(tmp_path, "FROM python:3.12-slim\nARG APP=/srv\nWORKDIR $APP\n"), build_args={"APP": "/x"})
    assert json.loads(given.config)["config"]["WorkingDir"] == "/x"
    with pytest.raises(images.BuildError, match="numeric ids"):
        images.build(context(tmp_path, "FROM python:3.12-slim\nCOPY --chown=app:app src/ /x/\n"))
    with pytest.raises(images.BuildError, match="outside the build context"):
        images.build(context(tmp_path, "FROM python:3.12-slim\nCOPY ../etc/passwd /x\n"))


def test_the_image_command_answers_bad_input_with_one_sentence(tmp_path):
    ctx = context(tmp_path, "FROM python:3.12-slim\nFROM python:3.13-slim\n")
    for argv, said in ((["image", "build", str(tmp_path / "missing")], "is not a folder"),
                       (["image", "build", str(ctx)], "a second FROM (a multi-stage build) is not supported"),
                       (["image", "push", str(CATALOG), "not a uri"], "is not an ECR repository URI"),
                       (["image"], "Say what to do with images")):
        run = subprocess.run([sys.executable, "-m", "labkit", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=60, env={**os.environ, "LABS_AWS_PORT": "1"})
        assert run.returncode == 2, (argv, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr and said in run.stderr, (argv, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_build_output_saves_an_oci_layout_that_loads_back_the_same(tmp_path):
    run = subprocess.run([sys.executable, "-m", "labkit", "image", "build", str(CATALOG), "--output",
                          str(tmp_path / "layout")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    digest = run.stdout.strip().splitlines()[-1]
    assert digest == images.build(CATALOG).digest
    assert json.loads((tmp_path / "layout" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert images.BuiltImage.load(tmp_path / "layout").digest == digest


# -- unpack --------------------------------------------------------------------------------------

def tar_layer(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for entry in entries:
            if isinstance(entry, tuple):
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                archive.addfile(info, io.BytesIO(entry[1]))
            else:
                archive.addfile(entry)
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def image_of(*layers: Path) -> Image:
    return Image(digest="sha256:" + "ab" * 32, repository="ada-catalog", config={}, layers=list(layers))


@pytest.mark.parametrize("entry", [("../escaped", b"x"), ("app/../../escaped", b"x")], ids=["dotdot", "nested-dotdot"])
def test_unpack_refuses_an_entry_that_leaves_the_root(tmp_path, entry):
    bad = tar_layer(tmp_path / "bad.tar.gz", [("app/ok", b"ok"), entry])
    with pytest.raises(ImageError, match="a path outside the image's root; the image is refused"):
        unpack(image_of(bad), tmp_path / "roots")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "roots" / "escaped").exists()
    assert list((tmp_path / "roots").iterdir()) == []  # nothing half-unpacked is left to be used


def test_unpack_keeps_writes_through_symlinks_inside_the_root_and_refuses_links_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    first = tar_layer(tmp_path / "1.tar.gz", [special("up", tarfile.SYMTYPE, "../../.."),
                                              special("abs", tarfile.SYMTYPE, str(outside)),
                                              special("dev/null", tarfile.CHRTYPE)])
    second = tar_layer(tmp_path / "2.tar.gz", [("up/planted", b"p"), ("abs/planted", b"p")])
    root = unpack(image_of(first, second), tmp_path / "roots")
    assert list(outside.iterdir()) == [] and not (tmp_path / "planted").exists()
    assert (root / "planted").read_bytes() == b"p"  # a link to "/" or ".." is the image's own root
    assert (root / str(outside).lstrip("/") / "planted").read_bytes() == b"p"
    assert not (root / "dev" / "null").exists()  # no device is made
    hard = tar_layer(tmp_path / "3.tar.gz", [special("pw", tarfile.LNKTYPE, "../../../etc/passwd")])
    with pytest.raises(ImageError, match="outside the image's root"):
        unpack(Image("sha256:" + "cd" * 32, "r", {}, [hard]), tmp_path / "roots")


def test_unpack_honours_whiteouts_and_is_cached_per_digest(tmp_path):
    first = tar_layer(tmp_path / "1.tar.gz", [("app/a.py", b"a"), ("app/b.py", b"b"), ("cache/x", b"x"),
                                              ("cache/y", b"y")])
    second = tar_layer(tmp_path / "2.tar.gz", [("app/.wh.a.py", b""), ("cache/.wh..wh..opq", b""),
                                               ("cache/z", b"z")])
    image = image_of(first, second)
    root = unpack(image, tmp_path / "roots")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["app", "app/b.py", "cache", "cache/z"]
    (root / "app" / "b.py").write_bytes(b"changed by a task")
    assert unpack(image, tmp_path / "roots") == root  # the same digest: the root made before
    assert (root / "app" / "b.py").read_bytes() == b"changed by a task"


# -- the catalog service ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(env: dict):
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(CATALOG / "app.py")], env={**os.environ, **env, "PORT": str(port),
                               "HOST": "127.0.0.1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(200):  # waits for the port, not a timed assert
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode())
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_catalog_service_serves_its_sample_data():
    process, base = _serve({"CATALOG_TABLE": ""})
    try:
        assert _get(f"{base}/health") == (200, {"status": "ok", "source": "sample"})
        status, body = _get(f"{base}/items")
        sample = json.loads((CATALOG / "items.json").read_text())
        assert status == 200 and body["items"] == sorted(sample, key=lambda i: i["sku"])
        assert _get(f"{base}/items/{sample[0]['sku']}") == (200, sample[0])
        status, body = _get(f"{base}/items/SKU-NOPE")
        assert status == 404 and "SKU-NOPE" in body["message"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_catalog_service_reads_the_table_its_environment_names(local, local_target):
    ddb = local_target.client("dynamodb")
    ddb.create_table(TableName="ada-catalog", KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="ada-catalog", Item={"sku": {"S": "SKU-T1"}, "name": {"S": "Map"}, "price": {"N": "250"}})
    process, base = _serve({"CATALOG_TABLE": "ada-catalog", "AWS_ENDPOINT_URL": local.endpoint,
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing"})
    try:
        assert _get(f"{base}/health") == (200, {"status": "ok", "source": "table"})
        assert _get(f"{base}/items") == (200, {"items": [{"sku": "SKU-T1", "name": "Map", "price": 250}]})
        assert _get(f"{base}/items/SKU-T1")[1]["name"] == "Map"
        assert _get(f"{base}/items/SKU-001")[0] == 404  # the sample data is not mixed in
    finally:
        process.terminate()
        process.wait(timeout=10)
