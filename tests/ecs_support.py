"""Real images and task definitions for the ECS tests: a small Python HTTP service pushed to the local ECR.

The image is an OCI image as a registry stores it (a layer tar, a config, a manifest
whose sha256 is the digest ECR reports), written by the registry's own rules: blobs under
``<state dir>/registry/blobs/sha256/<hex>``, the manifest through ECR's ``put_image``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

ACCOUNT = "123456789012"
REGION = "us-east-1"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}

# The service: answers / with what it sees, /health with 200 (or 500 once HEALTH_FAILS is set),
# /s3 lists buckets with whatever credentials the SDK finds, /read/<path> reads a file, /hog takes memory.
APP = '''
import json, os, sys, http.server
print("starting on", os.environ.get("PORT", "8080"), flush=True)
print("to stderr", file=sys.stderr, flush=True)
hog = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code = 500 if os.environ.get("HEALTH_FAILS") else 200
            self.send_response(code); self.end_headers(); return
        if self.path == "/s3":
            import boto3
            try:
                names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
                body = {"buckets": names}
            except Exception as exc:
                body = {"error": str(exc)}
        elif self.path.startswith("/read/"):
            try:
                with open(self.path[len("/read"):]) as fh:
                    body = {"read": len(fh.read())}
            except OSError as exc:
                body = {"error": type(exc).__name__}
        elif self.path == "/hog":
            hog.append(bytearray(400 * 1024 * 1024))
            body = {"hog": len(hog)}
        else:
            body = {"env": dict(os.environ), "cwd": os.getcwd(), "uid": os.getuid(), "argv": sys.argv}
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        print("request", self.path, flush=True)
if os.environ.get("EXIT_AT_ONCE"):
    sys.exit(int(os.environ["EXIT_AT_ONCE"]))
http.server.HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
'''


def _blob(home: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    folder = home / "registry" / "blobs" / "sha256"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if not path.exists():
        tmp = path.with_name(f".{digest}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        tmp.replace(path)
    return f"sha256:{digest}"


def layer(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def push_image(ecr, home: Path, repository: str, tag: str = "v1", files: dict | None = None,
               config: dict | None = None) -> tuple[str, str]:
    """Push an image of ``files`` to the local ECR; returns (image URI with the tag, digest)."""
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    tar = layer(files if files is not None else {"app/app.py": APP})
    layer_digest = _blob(home, tar)
    image_config = {"Cmd": ["python", "/app/app.py"], "WorkingDir": "/app", "Env": ["PORT=8080", "FROM_IMAGE=yes"],
                    "ExposedPorts": {"8080/tcp": {}}}
    image_config.update(config or {})
    config_blob = json.dumps({"architecture": "amd64", "os": "linux", "config": image_config,
                              "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = _blob(home, config_blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config_blob)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": layer_digest, "size": len(tar)}]})
    ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag,
                  imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}:{tag}", digest


def container(image: str, **extra) -> dict:
    definition = {"name": "web", "image": image, "essential": True, "portMappings": [{"containerPort": 8080}],
                  "stopTimeout": 2}
    definition.update(extra)
    return definition


def register(ecs, family: str, containers: list[dict], **extra) -> str:
    params = dict(family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
                  memory="512", containerDefinitions=containers)
    params.update(extra)
    return ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"]


def network(ec2) -> dict:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    return {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}


def wait_for(describe, done, timeout: float = 60.0, step: float = 0.1):
    """Poll ``describe()`` until ``done(result)``; the last result (tests assert on it, never on time)."""
    deadline = time.monotonic() + timeout
    result = describe()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(step)
        result = describe()
    return result


def task_of(ecs, cluster: str, arn: str) -> dict:
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


@dataclass
class Inside:
    """A task port in its own network namespace: reached from a socket made inside that namespace
    (as the load balancer does), never from the host's namespace."""
    namespace: str
    address: str
    port: int
    pid: int | None

    def connect(self, timeout: float) -> socket.socket:
        from labkit.localaws import netns

        maker = netns._Maker(netns.NETNS_DIR / self.namespace)  # FileNotFoundError once the task's namespace is gone
        try:
            sock = maker.call(socket.socket)
        finally:
            maker.stop()
        try:
            sock.settimeout(timeout)
            sock.connect((self.address, self.port))
        except BaseException:
            sock.close()
            raise
        return sock


def port_of(task: dict, container_port: int = 8080):
    """Where a task's containerPort answers, from DescribeTasks: its loopback port (loopback mode), or
    an :class:`Inside` (its namespace, ``labkit-`` and the task id's first 12 characters)."""
    for c in task["containers"]:
        for binding in c.get("networkBindings", []):
            if binding["containerPort"] == container_port:
                return binding["hostPort"]
    for c in task["containers"]:
        for interface in c.get("networkInterfaces", []):
            task_id = task["taskArn"].rsplit("/", 1)[-1]
            runtime = c.get("runtimeId", "")
            return Inside(f"labkit-{task_id[:12]}", interface["privateIpv4Address"], container_port,
                          int(runtime.rsplit("-", 1)[1]) if runtime else None)
    raise AssertionError(f"no binding for {container_port} in {task['containers']}")


def get_json(where, path: str = "/", timeout: float = 10.0):
    """GET ``path`` from a task port (a loopback port or an :class:`Inside`), retrying until ``timeout``."""
    import http.client

    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", where), timeout=5) if isinstance(where, int) \
                else where.connect(5)
            connection = http.client.HTTPConnection("task", timeout=5)
            connection.sock = sock
            try:
                connection.request("GET", path)
                return json.loads(connection.getresponse().read() or b"null")
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise OSError(f"{where}{path} did not answer") from None
            time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
