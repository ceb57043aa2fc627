"""The local AWS never loses an acknowledged change: kill -9 at any point, a full disk, odd requests.

Each test runs its own server (`labkit up`) in a temporary state folder. Kills are real SIGKILLs,
at random moments during bursts of writes from several threads, or at named points of a rewrite
or a compaction (the LABKIT_CRASH_AT test hook). Counts and rounds are fixed, so the tests are
bounded in time; nothing is timed.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit import localaws
from labkit.errors import LabkitError
from tests.localaws import _port

pytestmark = pytest.mark.server

ROUNDS = 4  # kill -9 rounds during bursts
THREADS = 3


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABS_AWS_PORT", str(_port()))
    yield tmp_path / "home"
    localaws.down()


def _client(service: str, host: str | None = None):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=30)
    return boto3.client(service, endpoint_url=f"http://localhost:{os.environ['LABS_AWS_PORT']}",
                        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=config)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _burst(prefix: str, acked_params: dict, acked_apis: dict, stop: threading.Event) -> list[threading.Thread]:
    """Writers that record each write only once the server acknowledged it."""
    lock = threading.Lock()

    def writer(number: int) -> None:
        ssm, apigw = _client("ssm"), _client("apigateway")
        for i in range(10_000):
            if stop.is_set():
                return
            name = f"/{prefix}/t{number}/{i}"
            try:
                if i % 3 == 2:
                    api = apigw.create_rest_api(name=name)
                    with lock:
                        acked_apis[api["id"]] = name
                else:
                    ssm.put_parameter(Name=name, Value=name, Type="String")
                    with lock:
                        acked_params[name] = name
            except Exception:  # the server died mid-request: this write was not acknowledged
                return

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    return threads


def _assert_all_present(acked_params: dict, acked_apis: dict) -> None:
    ssm, apigw = _client("ssm"), _client("apigateway")
    names = sorted(acked_params)
    found = {}
    for start in range(0, len(names), 10):
        for parameter in ssm.get_parameters(Names=names[start:start + 10])["Parameters"]:
            found[parameter["Name"]] = parameter["Value"]
    assert found == acked_params, f"{len(set(acked_params) - set(found))} acknowledged parameter(s) lost"
    apis = {}
    for page in apigw.get_paginator("get_rest_apis").paginate():
        for api in page["items"]:
            assert api["id"] not in apis, f"two APIs share the id {api['id']}"
            apis[api["id"]] = api["name"]
    for api_id, name in acked_apis.items():
        assert apis.get(api_id) == name, f"acknowledged API {name} ({api_id}) lost or renamed"


def test_kill_minus_nine_during_bursts_of_writes_loses_no_acknowledged_change(home, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_COMPACT_EVERY", "25")  # compactions run during the bursts, and get killed too
    rng = random.Random(7)
    acked_params: dict = {}
    acked_apis: dict = {}
    for round_ in range(ROUNDS):
        pid = localaws.up()["pid"]
        stop = threading.Event()
        threads = _burst(f"r{round_}", acked_params, acked_apis, stop)
        time.sleep(rng.uniform(0.5, 2.0))
        _kill(pid)
        stop.set()
        for thread in threads:
            thread.join(30)
        localaws.up()  # replays (checkpoint + tail)
        _assert_all_present(acked_params, acked_apis)
        # new writes after the restart take fresh ids, never one an earlier write holds
        for i in range(3):
            api = _client("apigateway").create_rest_api(name=f"after-{round_}-{i}")
            acked_apis[api["id"]] = f"after-{round_}-{i}"
        _assert_all_present(acked_params, acked_apis)
        localaws.down()
    with capsys.disabled():
        print(f"\n[durability] {ROUNDS} kills during bursts, {len(acked_params) + len(acked_apis)} acknowledged "
              "writes, 0 lost")
    assert len(acked_params) + len(acked_apis) > ROUNDS * 3  # the bursts really wrote


@pytest.mark.parametrize("point", ["compact:checkpoint-written", "compact:journal-switched"])
def test_kill_at_each_step_of_a_compaction_loses_nothing(home, monkeypatch, point):
    monkeypatch.setenv("LABKIT_COMPACT_EVERY", "10")
    localaws.up()
    acked = {}
    ssm = _client("ssm")
    for i in range(12):  # one compaction in the middle, two lines in the tail
        ssm.put_parameter(Name=f"/c/{i}", Value=str(i), Type="String")
        acked[f"/c/{i}"] = str(i)
    localaws.down()
    monkeypatch.setenv("LABKIT_CRASH_AT", point)
    pid = localaws.up()["pid"]
    with pytest.raises(Exception):  # the 8th write completes the tail to 10: the server kills itself compacting
        for i in range(12, 40):
            ssm.put_parameter(Name=f"/c/{i}", Value=str(i), Type="String")
            acked[f"/c/{i}"] = str(i)
    _kill(pid)
    monkeypatch.delenv("LABKIT_CRASH_AT")
    localaws.up()
    _assert_all_present(acked, {})
    # and the state it came back to is the one its plain journal replays to
    values = _state_of_parameters()
    localaws.replay(localaws.read_journal())
    assert _state_of_parameters() == values


def _state_of_parameters() -> dict:
    ssm = _client("ssm")
    out = {}
    for page in ssm.get_paginator("describe_parameters").paginate():
        for p in page["Parameters"]:
            out[p["Name"]] = p["Version"]  # (a replay runs at another time: dates differ)
    return out


def test_kill_during_the_startup_rewrite_loses_nothing(home, monkeypatch):
    monkeypatch.setenv("LABKIT_COMPACT_EVERY", "100000")
    localaws.up()
    acked = {}
    ssm = _client("ssm")
    for i in range(30):
        ssm.put_parameter(Name=f"/s/{i}", Value=str(i), Type="String")
        acked[f"/s/{i}"] = str(i)
    localaws.down()
    monkeypatch.setenv("LABKIT_CRASH_AT", "rewrite:journal.ndjson:aside")  # killed after replay, mid-rewrite
    with pytest.raises(LabkitError, match="stopped while starting"):
        localaws.up()
    monkeypatch.delenv("LABKIT_CRASH_AT")
    rng = random.Random(3)
    kills = 0
    for _ in range(3):  # and at random moments of a start
        journal_file = localaws.journal_path()
        process = subprocess.Popen([sys.executable, "-m", "labkit.localaws", "--port", os.environ["LABS_AWS_PORT"],
                                    "--journal", str(journal_file)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 3.0))
        process.kill()
        process.wait()
        kills += 1
    localaws.up()
    _assert_all_present(acked, {})
    assert not list(home.glob(".journal.ndjson.*.tmp"))  # what the killed rewrites left aside is cleared


def test_a_checkpoint_restores_the_same_state_as_replaying_every_line(home, monkeypatch):
    before = _compacted_state(monkeypatch)
    localaws.down()
    journal_head = localaws.journal_path().read_bytes().split(b"\n", 1)[0]
    assert journal_head.startswith(b'{"checkpoint"')  # the restart below loads a checkpoint
    localaws.up()
    assert _snapshot_of_state() == before
    localaws.save("plain")  # a snapshot is the plain journal: it replays to the same state, ids and all
    localaws.reset()
    localaws.restore("plain")
    assert _snapshot_of_state() == before


def test_a_checkpoint_moto_cannot_load_is_replayed_from_the_lines_it_holds(home, monkeypatch):
    before = _compacted_state(monkeypatch)
    localaws.down()
    from labkit.localaws import checkpoint

    header = json.loads(localaws.journal_path().read_bytes().split(b"\n", 1)[0])
    path = home / header["checkpoint"]
    import pickle

    outer = pickle.loads(path.read_bytes()[len(checkpoint.MAGIC):])
    outer["moto"] = "0.0-other"  # as if moto had been upgraded since
    path.write_bytes(checkpoint.MAGIC + pickle.dumps(outer))
    localaws.up()
    assert _snapshot_of_state() == before


def _compacted_state(monkeypatch) -> dict:
    """A running local AWS holding the mixed state, compacted into a checkpoint on the way; returns it."""
    monkeypatch.setenv("LABKIT_COMPACT_EVERY", "15")
    localaws.up()
    _build_mixed_state()
    return _snapshot_of_state()


def _build_mixed_state() -> None:
    import io
    import zipfile

    s3, ssm, ddb = _client("s3"), _client("ssm"), _client("dynamodb")
    s3.create_bucket(Bucket="ada-site")
    s3.put_object(Bucket="ada-site", Key="index.html", Body=b"<h1>hi</h1>")
    ddb.create_table(TableName="ada-items", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    for i in range(10):
        ddb.put_item(TableName="ada-items", Item={"pk": {"S": str(i)}})
        ssm.put_parameter(Name=f"/m/{i}", Value=str(i), Type="String")
    ec2 = _client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")
    logs = _client("logs")
    logs.create_log_group(logGroupName="/ada/app")
    apigw = _client("apigateway")
    api = apigw.create_rest_api(name="ada-api")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigw.create_deployment(restApiId=api, stageName="dev")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    role = _client("iam").create_role(RoleName="ada-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    _client("lambda").create_function(FunctionName="ada-fn", Runtime="python3.12", Handler="app.handler",
                                      Role=role, Code={"ZipFile": buf.getvalue()})
    _client("cognito-idp").create_user_pool(PoolName="ada-pool")


def _snapshot_of_state() -> dict:
    s3, ssm, ddb, ec2 = _client("s3"), _client("ssm"), _client("dynamodb"), _client("ec2")
    code = _client("lambda").get_function(FunctionName="ada-fn")
    return {
        "object": s3.get_object(Bucket="ada-site", Key="index.html")["Body"].read(),
        "items": sorted(i["pk"]["S"] for i in ddb.scan(TableName="ada-items")["Items"]),
        "params": sorted(p["Name"] for p in ssm.describe_parameters(MaxResults=50)["Parameters"]),
        "vpcs": sorted((v["VpcId"], v["CidrBlock"]) for v in ec2.describe_vpcs()["Vpcs"]),
        "subnets": sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]),
        "apis": sorted((a["id"], a["name"]) for a in _client("apigateway").get_rest_apis()["items"]),
        "pools": sorted(p["Id"] for p in _client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"]),
        "ran": _client("lambda").invoke(FunctionName="ada-fn")["Payload"].read(),  # the code bytes came back
        "sha": code["Configuration"]["CodeSha256"],
    }


# -- a full disk ------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 16 MB tmpfs with few inodes as the state folder (root only: skipped where mount is refused)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,nr_inodes=64,mode=0700", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("a tmpfs cannot be mounted here (needs root)")
    monkeypatch.setenv("LABKIT_HOME", str(mount / "home"))
    monkeypatch.setenv("LABS_AWS_PORT", str(_port()))
    try:
        yield mount
    finally:
        try:
            localaws.down()
        finally:  # a mount must never outlive the test
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(mount: Path) -> list[Path]:
    """Take every free block and inode of the disk."""
    made = []
    big = mount / "filler"
    with open(big, "wb", buffering=0) as handle:
        for size in (65536, 4096, 1):  # down to the last byte: a write that fits nowhere must find no room
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass
    made.append(big)
    for i in range(1000):
        try:
            (mount / f"filler-{i}").touch()
        except OSError:
            break
        made.append(mount / f"filler-{i}")
    return made


def _api_ids(names: list[str], fault: Path | None) -> tuple[list[str], list[str]]:
    """Create an API per name; at REFUSED fill the disk and write until one is refused (the last page of the
    journal may still have room for a line or two). Returns (names acknowledged, their ids)."""
    from botocore.exceptions import ClientError

    apigw = _client("apigateway")
    acked, ids = [], []
    for name in names:
        if name != "REFUSED":
            ids.append(apigw.create_rest_api(name=name)["id"])
            acked.append(name)
            continue
        made = _fill(fault)
        for k in range(20):
            try:
                ids.append(apigw.create_rest_api(name=f"slack-{k}")["id"])
                acked.append(f"slack-{k}")
            except ClientError as refused:
                error = refused.response["Error"]
                assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 503
                assert error["Code"] == "ServiceUnavailableException"
                assert "could not save this change" in error["Message"] and "\n" not in error["Message"]
                break
        else:
            raise AssertionError("the full disk took every write")
        for path in made:
            path.unlink()
    return acked, ids


def test_a_full_disk_refuses_the_write_cleanly_and_does_not_move_the_sequence(small_disk, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_COMPACT_EVERY", "100000")
    localaws.up()
    journal_file = localaws.journal_path()
    acked, with_fault = _api_ids(["a", "b", "REFUSED", "c", "d"], small_disk)
    lines = journal_file.read_bytes().splitlines()
    assert len(lines) == len(acked) and all(json.loads(line)["n"] for line in lines)  # nothing torn, nothing extra
    assert [json.loads(line)["n"] for line in lines] == list(range(1, len(acked) + 1))  # the refusal took no number
    localaws.down()
    # the same writes on a disk that never filled: the ids after the refusal are the same
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "roomy"))
    monkeypatch.setenv("LABS_AWS_PORT", str(_port()))
    localaws.up()
    assert _api_ids(acked, None) == (acked, with_fault)
    localaws.down()


def test_save_and_reset_on_a_full_disk_fail_with_one_sentence_and_keep_the_files(small_disk):
    localaws.up()
    ssm = _client("ssm")
    ssm.put_parameter(Name="/kept", Value="1", Type="String")
    localaws.save("before")
    snapshot = localaws.control.snapshot_dir() / "before.ndjson"
    saved = snapshot.read_bytes()
    ssm.put_parameter(Name="/kept2", Value="2", Type="String")
    for number in range(4):  # a new snapshot larger than the pages an old one frees when it is replaced
        ssm.put_parameter(Name=f"/large/{number}", Value="x" * 4000, Type="String")
    journal_before = localaws.journal_path().read_bytes()
    made = _fill(small_disk)
    with pytest.raises(LabkitError) as failed:
        localaws.save("before", force=True)
    assert "could not be saved" in str(failed.value) and "\n" not in str(failed.value)
    assert snapshot.read_bytes() == saved  # the previous snapshot, whole
    with pytest.raises(LabkitError) as failed:
        localaws.save("fresh")
    assert not (snapshot.parent / "fresh.ndjson").exists()  # never a 0-byte snapshot
    env = {**os.environ}
    cli = subprocess.run([sys.executable, "-m", "labkit", "reset"], capture_output=True, text=True, env=env)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and "could not be saved" in cli.stderr  # its keep-copy
    with pytest.raises(LabkitError) as failed:  # and the server itself refuses to reset what it cannot journal
        localaws.reset()
    assert "could not save this change" in str(failed.value) and "\n" not in str(failed.value)
    assert localaws.journal_path().read_bytes() == journal_before  # nothing was reset
    assert ssm.get_parameter(Name="/kept2")["Parameter"]["Value"] == "2"
    for path in made:
        path.unlink()
    localaws.down()
    localaws.up()
    assert ssm.get_parameter(Name="/kept2")["Parameter"]["Value"] == "2"


# -- every change moto applies is journaled, however it was sent ---------------------------------

def _signed(method: str, url: str, service: str, host: str, body: bytes = b"", headers: dict | None = None):
    """Send a SigV4-signed request to the local AWS with ``host`` as its Host header."""
    import http.client
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(url)
    request = AWSRequest(method=method, url=f"http://{host}{parts.path}" + (f"?{parts.query}" if parts.query else ""),
                         data=body, headers={**(headers or {}), "Host": host})
    SigV4Auth(Credentials("testing", "testing"), service, "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", int(os.environ["LABS_AWS_PORT"]), timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request(method, path, body=body, headers=dict(request.headers.items()))
    response = connection.getresponse()
    data = response.read()
    connection.close()
    assert response.status < 300, (response.status, data[:300])
    return data


def test_writes_sent_as_get_or_with_unusual_hosts_are_journaled_and_replayed(home):
    localaws.up()
    port = os.environ["LABS_AWS_PORT"]
    # the query protocol takes GET too: a VPC created by a GET is a change
    _signed("GET", "/?Action=CreateVpc&Version=2016-11-15&CidrBlock=10.42.0.0%2F16", "ec2", f"localhost:{port}")
    # S3 virtual-host style: the bucket is in the Host header only
    _client("s3").create_bucket(Bucket="ada-vhost")
    _signed("PUT", "/page.html", "s3", f"ada-vhost.localhost:{port}", b"<p>virtual</p>",
            {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    # a Host header in capitals, and one without a port
    for host, name in ((f"LOCALHOST:{port}", "/host/upper"), ("localhost", "/host/no-port")):
        body = json.dumps({"Name": name, "Value": "v", "Type": "String"}).encode()
        _signed("POST", "/", "ssm", host, body,
                {"X-Amz-Target": "AmazonSSM.PutParameter", "Content-Type": "application/x-amz-json-1.1"})
    journal = localaws.journal_path().read_bytes()
    assert b"CreateVpc" in journal and b"ada-vhost.localhost" in journal and journal.count(b"PutParameter") == 2

    def state():
        ec2, s3, ssm = _client("ec2"), _client("s3"), _client("ssm")
        return ([v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.42.0.0/16"]}])["Vpcs"]],
                s3.get_object(Bucket="ada-vhost", Key="page.html")["Body"].read(),
                sorted(p["Name"] for p in ssm.get_parameters(Names=["/host/upper", "/host/no-port"])["Parameters"]))

    before = state()
    assert before[0] and before[1] == b"<p>virtual</p>" and before[2] == ["/host/no-port", "/host/upper"]
    localaws.down()
    localaws.up()  # replayed from the journal
    assert state() == before


# -- a large snapshot restores from the checkpoint kept beside it ---------------------------------

def test_a_snapshot_keeps_its_checkpoint_and_a_restore_loads_it(home, monkeypatch):
    before = _compacted_state(monkeypatch)
    localaws.save("big")
    folder = localaws.control.snapshot_dir()
    assert (folder / "big.checkpoint").exists()  # the state was compacted, so its checkpoint is kept with it
    localaws.reset()
    assert localaws.restore("big") >= 15
    assert _snapshot_of_state() == before
    log = (home / "server.log").read_text()
    assert "does not match its snapshot" not in log
    # The journal now has a checkpoint of its own, so replacing the snapshot cannot touch the state.
    header = json.loads(localaws.journal_path().read_bytes().split(b"\n", 1)[0])
    assert header["checkpoint"].startswith("checkpoint.")
    localaws.down()
    localaws.up()
    assert _snapshot_of_state() == before


def test_a_checkpoint_that_does_not_match_its_snapshot_is_ignored(home, monkeypatch):
    monkeypatch.setenv("LABKIT_COMPACT_EVERY", "15")
    localaws.up()
    _build_mixed_state()
    localaws.save("first")
    localaws.reset()
    ssm = _client("ssm")
    for number in range(20):  # another state altogether, long enough for a compaction of its own
        ssm.put_parameter(Name=f"/other/{number}", Value="y", Type="String")
    localaws.save("second")
    folder = localaws.control.snapshot_dir()
    localaws.reset()
    # A mix-up: the first snapshot's checkpoint beside the second's lines.
    (folder / "second.checkpoint").unlink()
    (folder / "second.checkpoint").hardlink_to(folder / "first.checkpoint")
    assert localaws.restore("second") == 20  # every line replayed: nothing of the first state, nothing lost
    names = sorted(p["Name"] for p in ssm.get_parameters_by_path(Path="/other")["Parameters"])
    assert len(names) == 10 and ssm.get_parameter(Name="/other/19")["Parameter"]["Value"] == "y"
    assert _client("s3").list_buckets()["Buckets"] == []
    assert "does not match its snapshot" in (home / "server.log").read_text()
