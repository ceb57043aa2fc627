"""Grading sessions hold against hostile learner code because the server enforces them.

Against a real server process: a session's key reads but never writes (and
its signature is checked), a lockdown refuses every write and every control
path from anyone, sessions end on close and by themselves, the call log
records what learner code asked and was answered, a page limit makes a table
look big, and bytes appended to the journal by another process are cut off
and never replayed.
"""
from __future__ import annotations

import http.client
import json
import time

import boto3
from botocore.config import Config
import pytest
from botocore.exceptions import ClientError

from labkit import config, localaws
from labkit.errors import LabkitError
from labkit.localaws import grading, guard
from labkit.target import Target

pytestmark = pytest.mark.server


def _client(session, service: str, v4: bool = True, **keys):
    """A plain boto3 client on the local AWS: the session's keys, or whichever ``keys`` are given."""
    creds = keys or session.credentials
    creds.setdefault("region_name", "us-east-1")
    config = Config(signature_version="s3v4") if v4 and service == "s3" else None
    return boto3.Session(**creds).client(service, endpoint_url=localaws.status()["endpoint"], config=config)


def _raw(port: int, method: str, path: str, headers: dict | None = None, body: bytes = b"") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Host": f"localhost:{port}", **(headers or {})})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def _secret() -> dict:
    return {guard.SECRET_HEADER: guard.read_secret(config.state_dir())}


def _changes() -> int:
    return localaws.read_journal().count(b"\n")


def _buckets() -> list[str]:
    return [b["Name"] for b in Target("local", prefix="ada").client("s3").list_buckets()["Buckets"]]


def _wait_for(condition, what: str, limit: float = 60.0):
    """Poll ``condition`` until it holds; a bound on the wait, not on the time it took."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {limit:g} s")


def _table(name: str, items: int = 0) -> None:
    ddb = Target("local", prefix="ada").client("dynamodb")
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    for i in range(items):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"item-{i:03d}"}})


def _denied(exc: pytest.ExceptionInfo, text: str) -> None:
    error = exc.value.response["Error"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Code"] in ("AccessDenied", "AccessDeniedException"), error
    assert text in error["Message"], error


# -- read-only credentials ---------------------------------------------------------------

def test_a_session_key_reads_but_its_writes_are_refused_and_change_nothing(local):
    _table("ada-items", items=2)
    before = _changes()
    with localaws.grading_session(lockdown=False) as session:
        assert session.access_key_id.startswith("LKGR") and len(session.access_key_id) == 20
        ddb = _client(session, "dynamodb")
        assert ddb.get_item(TableName="ada-items", Key={"pk": {"S": "item-000"}})["Item"]
        assert len(ddb.scan(TableName="ada-items")["Items"]) == 2
        with pytest.raises(ClientError) as exc:
            ddb.put_item(TableName="ada-items", Item={"pk": {"S": "forged"}})
        _denied(exc, grading.READ_ONLY)
        with pytest.raises(ClientError) as exc:
            _client(session, "s3").create_bucket(Bucket="ada-forged")
        _denied(exc, grading.READ_ONLY)
        with pytest.raises(ClientError) as exc:
            _client(session, "iam").create_user(UserName="ada-forged")
        _denied(exc, grading.READ_ONLY)
        assert session.calls()[-1]["status"] == 403
    assert _changes() == before
    assert "ada-forged" not in _buckets()
    ddb = Target("local", prefix="ada").client("dynamodb")
    assert "Item" not in ddb.get_item(TableName="ada-items", Key={"pk": {"S": "forged"}})
    assert not [u for u in Target("local", prefix="ada").client("iam").list_users()["Users"]
                if u["UserName"] == "ada-forged"]


def test_genuine_reads_of_every_protocol_pass_the_signature_check(local):
    learner = Target("local", prefix="ada")
    key = "dir/a b+c~é%.txt"  # S3 signs the path as sent; other services encode it again
    learner.client("s3").create_bucket(Bucket="ada-site")
    learner.client("s3").put_object(Bucket="ada-site", Key=key, Body=b"hello")
    learner.client("ssm").put_parameter(Name="/ada/x y", Value="1", Type="String")
    _table("ada-items", items=1)
    with localaws.grading_session(lockdown=False) as session:
        s3 = _client(session, "s3")
        assert s3.get_object(Bucket="ada-site", Key=key)["Body"].read() == b"hello"
        assert s3.head_object(Bucket="ada-site", Key=key)["ContentLength"] == 5
        assert s3.list_objects_v2(Bucket="ada-site", Prefix="dir/a b")["KeyCount"] == 1
        assert _client(session, "s3", v4=True).get_bucket_location(Bucket="ada-site") is not None
        _client(session, "iam").list_roles(PathPrefix="/")
        _client(session, "sts").get_caller_identity()
        _client(session, "lambda").list_functions()
        with pytest.raises(ClientError) as exc:
            _client(session, "lambda").get_function(FunctionName="ada-none")
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"  # moto's answer, not ours
        _client(session, "apigateway").get_rest_apis()
        _client(session, "logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/ada")
        assert _client(session, "ssm").get_parameter(Name="/ada/x y")["Parameter"]["Value"] == "1"
        got = _client(session, "dynamodb").batch_get_item(RequestItems={"ada-items": {"Keys": [{"pk": {"S": "item-000"}}]}})
        assert got["Responses"]["ada-items"]
        calls = session.calls()
    assert [c["status"] for c in calls if c["status"] == 403] == []
    assert {c["service"] for c in calls} >= {"s3", "iam", "sts", "lambda", "apigateway", "logs", "ssm", "dynamodb"}


def test_a_session_key_without_its_secret_key_is_refused_even_for_reads(local):
    _table("ada-items")
    with localaws.grading_session(lockdown=False) as session:
        forged = _client(session, "dynamodb", aws_access_key_id=session.access_key_id,
                         aws_secret_access_key="not-the-secret-key")
        with pytest.raises(ClientError) as exc:
            forged.describe_table(TableName="ada-items")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "signature" in exc.value.response["Error"]["Message"]
        # a presigned URL signed with the real secret key is accepted, one with another is not
        s3 = _client(session, "s3")
        Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-site")
        good = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": "ada-site"})
        bad = _client(session, "s3", aws_access_key_id=session.access_key_id,
                      aws_secret_access_key="x" * 40).generate_presigned_url("list_objects_v2",
                                                                             Params={"Bucket": "ada-site"})
        path = lambda url: url.split(str(local.port), 1)[1]  # noqa: E731
        assert _raw(local.port, "GET", path(good))[0] == 200
        assert _raw(local.port, "GET", path(bad))[0] == 403
        version_2 = _client(session, "s3", v4=False).generate_presigned_url("list_objects_v2",
                                                                            Params={"Bucket": "ada-site"})
        code, body = _raw(local.port, "GET", path(version_2))
        assert code == 403 and b"Signature Version 4" in body


def test_a_session_key_cannot_reach_control_paths(local):
    with localaws.grading_session(lockdown=False) as session:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest("POST", f"{local.endpoint}/moto-api/reset", data=b"")
        SigV4Auth(Credentials(session.access_key_id, session.secret_access_key), "s3", "us-east-1").add_auth(request)
        code, body = _raw(local.port, "POST", "/moto-api/reset", {**dict(request.headers), **_secret()})
        assert code == 403 and grading.READ_ONLY.encode() in body


def test_an_ended_sessions_key_stays_read_only(local):
    with localaws.grading_session(lockdown=False) as session:
        pass
    with pytest.raises(ClientError) as exc:
        _client(session, "s3").create_bucket(Bucket="ada-late")
    _denied(exc, grading.READ_ONLY)
    assert "ada-late" not in _buckets()


# -- lockdown ------------------------------------------------------------------------------

def _learner_s3():
    return boto3.Session(aws_access_key_id="AKIALEARNER000000000", aws_secret_access_key="learner",
                         region_name="us-east-1").client("s3", endpoint_url=localaws.status()["endpoint"])


def test_lockdown_refuses_every_write_and_control_path_and_lifts_on_close(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-before")
    before = _changes()
    with localaws.grading_session(lockdown=True) as session:
        with pytest.raises(ClientError) as exc:
            _learner_s3().create_bucket(Bucket="ada-during")
        _denied(exc, "read-only while the grader runs learner code")
        code, body = _raw(local.port, "PUT", "/ada-unsigned")  # no credentials at all
        assert code == 403 and b"read-only while the grader runs learner code" in body
        code, body = _raw(local.port, "POST", "/", {"X-Amz-Target": "DynamoDB_20120810.CreateTable",
                                                    "Content-Type": "application/x-amz-json-1.0"}, b"{}")
        assert code == 403 and json.loads(body)["__type"] == "AccessDeniedException"
        code, body = _raw(local.port, "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
                          b"Action=CreateUser&UserName=ada-during&Version=2010-05-08")
        assert code == 403 and b"<ErrorResponse><Error>" in body and b"<Code>AccessDenied</Code>" in body
        assert _learner_s3().list_buckets()["Buckets"]  # reads go on
        # the install's secret opens no control path meanwhile: reset, replay, restore, snapshot, a new session
        for method, path in [("POST", "/moto-api/reset"), ("POST", "/_labkit/replay"), ("GET", "/_labkit/journal"),
                             ("POST", "/_labkit/snapshot?name=x"), ("POST", grading.PATH)]:
            code, body = _raw(local.port, method, path, _secret(), b"{}")
            assert code == 403 and b"closed while the grader runs learner code" in body, path
        with pytest.raises(LabkitError, match="closed while the grader"):
            localaws.reset()
        with pytest.raises(LabkitError, match="closed while the grader"):
            localaws.replay(b"")
        # its own path with another token is refused too; status answers
        code, _ = _raw(local.port, "GET", f"{grading.PATH}/{session.id}", {**_secret(), grading.TOKEN_HEADER: "x"})
        assert code == 403
        assert localaws.status()["running"]
        assert session.calls() == []
    assert _changes() == before and "ada-during" not in _buckets() and "ada-unsigned" not in _buckets()
    _learner_s3().create_bucket(Bucket="ada-after")  # lifted on close
    assert "ada-after" in _buckets()


def test_restore_is_refused_during_lockdown(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-saved")
    localaws.save("mine")
    with localaws.grading_session():
        with pytest.raises(LabkitError, match="closed while the grader"):
            localaws.restore("mine")


def test_lockdown_lifts_by_itself_when_the_session_expires(local):
    session = localaws.open_grading_session(seconds=3)

    def lifted():
        try:
            _learner_s3().create_bucket(Bucket="ada-later")
        except ClientError:
            return False
        return True

    _wait_for(lifted, "the lockdown lifting after its seconds")
    # a write got through only once the session had ended by itself (it was never closed)
    answer = session._call("GET")  # an ended session's log can still be read
    assert answer["open"] is False and answer["calls"] == []
    assert "ada-later" in _buckets()
    session.close()


# -- the call log and small pages -------------------------------------------------------------

def test_the_log_records_operations_parameters_and_answers(local):
    _table("ada-items", items=3)
    with localaws.grading_session(lockdown=False) as session:
        ddb = _client(session, "dynamodb")
        ddb.get_item(TableName="ada-items", Key={"pk": {"S": "item-001"}})
        ddb.get_item(TableName="ada-items", Key={"pk": {"S": "missing"}})
        ddb.scan(TableName="ada-items", Select="COUNT", Limit=2)
        _client(session, "s3").list_buckets()
        calls = session.calls()
    assert [c["operation"] for c in calls] == ["GetItem", "GetItem", "Scan", "GET /"]
    first, missing, scan, s3 = calls
    assert first["service"] == "dynamodb" and first["table"] == "ada-items" and first["item"] is True
    assert missing["item"] is False and missing["status"] == 200
    assert scan["select"] == "COUNT" and scan["limit"] == 2 and scan["count"] == 2 and scan["scanned_count"] == 2
    assert scan["last_evaluated_key"] is True and scan["exclusive_start_key"] is False
    assert s3["service"] == "s3" and s3["status"] == 200


def test_the_log_is_bounded_and_counts_the_rest():
    session = grading.Session("s", "LKGR" + "A" * 16, "k", "t", None, False, 0.0, 1.0)
    for i in range(grading.MAX_CALLS + 5):
        session.record({"operation": f"op-{i}"})
    assert len(session.calls) == grading.MAX_CALLS and session.dropped == 5
    assert session.calls[-1]["operation"] == f"op-{grading.MAX_CALLS - 1}"


def test_a_page_limit_makes_a_scan_and_a_query_stop_at_the_first_page(local):
    _table("ada-items", items=7)
    with localaws.grading_session(page_limit=3, lockdown=False) as session:
        ddb = _client(session, "dynamodb")
        page = ddb.scan(TableName="ada-items")
        assert len(page["Items"]) == 3 and "LastEvaluatedKey" in page
        page = ddb.scan(TableName="ada-items", Limit=2)
        assert len(page["Items"]) == 2
        page = ddb.query(TableName="ada-items", KeyConditionExpression="pk = :k",
                         ExpressionAttributeValues={":k": {"S": "item-001"}}, Limit=10)
        assert len(page["Items"]) == 1
        calls = session.calls()
    assert [(c["limit"], c["limit_applied"]) for c in calls] == [(None, 3), (2, 2), (10, 3)]
    assert calls[0]["last_evaluated_key"] is True and calls[0]["count"] == 3
    full = Target("local", prefix="ada").client("dynamodb").scan(TableName="ada-items")  # others see every item
    assert len(full["Items"]) == 7


# -- the journal's only writer ------------------------------------------------------------------

def test_bytes_appended_to_the_journal_are_cut_off_and_never_replayed(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-mine")
    journal = localaws.journal_path()
    forged = json.dumps({"method": "PUT", "url": "http://localhost/ada-forged", "headers": {}, "body": "",
                         "n": 999}).encode() + b"\n"
    with open(journal, "ab") as handle:
        handle.write(forged)
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-next")  # the next append cuts it off
    assert forged not in journal.read_bytes()
    kept = sorted(journal.parent.glob(journal.name + ".foreign.*"))
    assert kept and kept[-1].read_bytes() == forged
    with open(journal, "ab") as handle:  # and once more just before a stop
        handle.write(forged)
    localaws.down()
    localaws.up()
    assert "ada-forged" not in _buckets()
    assert {"ada-mine", "ada-next"} <= set(_buckets())
    assert forged not in journal.read_bytes()
    assert len(list(journal.parent.glob(journal.name + ".foreign.*"))) == len(kept) + 1


def test_the_status_counts_foreign_appends(local):
    journal = localaws.journal_path()
    with open(journal, "ab") as handle:
        handle.write(b"not ours\n")
    code, body = _raw(local.port, "GET", "/_labkit/status", _secret())
    assert code == 200 and json.loads(body)["foreign_journal_appends"] >= 1
    assert b"not ours" not in journal.read_bytes()


def test_a_session_end_cuts_foreign_appends(local):
    journal = localaws.journal_path()
    session = localaws.open_grading_session(lockdown=True)
    with open(journal, "ab") as handle:
        handle.write(b"written during the window\n")
    session.close()
    assert b"written during the window" not in journal.read_bytes()


# -- the control path's input ------------------------------------------------------------------

@pytest.mark.parametrize("body,says", [
    (b"", "JSON object"), (b"{", "not JSON"), (b"[]", "JSON object"), (b"42", "JSON object"),
    (b'{"page_limit": 0}', "page_limit"), (b'{"page_limit": "3"}', "page_limit"), (b'{"page_limit": true}', "page_limit"),
    (b'{"lockdown": "yes"}', "lockdown"), (b'{"seconds": 601}', "seconds"), (b'{"seconds": 0}', "seconds"),
    (b'{"seconds": 1.5}', "seconds"), (b'{"color": 1}', "unknown field"), (b"\xff\xfe", "not JSON"),
])
def test_a_bad_session_request_is_one_sentence_and_400(local, body, says):
    code, answer = _raw(local.port, "POST", grading.PATH, {**_secret(), "Content-Type": "application/json"}, body)
    message = json.loads(answer)["message"]
    assert code == 400 and says in message and message.count(". ") == 0 and "Traceback" not in message


def test_session_paths_need_the_secret_and_the_token(local):
    assert _raw(local.port, "POST", grading.PATH, body=b"{}")[0] == 403  # no install secret
    with localaws.grading_session(lockdown=False) as session:
        path = f"{grading.PATH}/{session.id}"
        assert _raw(local.port, "GET", path, _secret())[0] == 403
        assert _raw(local.port, "DELETE", path, {**_secret(), grading.TOKEN_HEADER: "wrong"})[0] == 403
        assert _raw(local.port, "GET", f"{grading.PATH}/nosuch", _secret())[0] == 404
        assert session.calls() == []


def test_the_python_api_refuses_bad_arguments_in_one_sentence(local):
    for kwargs in ({"page_limit": 0}, {"seconds": 601}, {"seconds": "60"}, {"page_limit": True}):
        with pytest.raises(LabkitError):
            localaws.open_grading_session(**kwargs)


def test_secrets_of_a_session_are_never_journaled(local):
    with localaws.grading_session(lockdown=False) as session:
        _client(session, "s3").list_buckets()
        with pytest.raises(ClientError):
            _client(session, "s3").create_bucket(Bucket="ada-x")
        Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-y")
        journal = localaws.read_journal()
        for value in (session.secret_access_key, session._token, session.access_key_id):
            assert value.encode() not in journal
        assert session.secret_access_key not in repr(session)


def test_a_journal_put_in_place_of_the_servers_is_set_aside_and_its_own_written_back(local):
    learner = Target("local", prefix="ada").client("s3")
    learner.create_bucket(Bucket="ada-mine")
    journal = localaws.journal_path()
    ours = journal.read_bytes()
    forged = json.dumps({"method": "PUT", "url": "http://localhost/ada-forged", "headers": {}, "body": "",
                         "n": 1}).encode() + b"\n"
    other = journal.with_name("other.ndjson")
    other.write_bytes(forged)
    other.replace(journal)  # a whole other journal, renamed over the server's
    learner.create_bucket(Bucket="ada-next")
    assert journal.read_bytes().startswith(ours) and forged not in journal.read_bytes()
    assert any(p.read_bytes() == forged for p in journal.parent.glob(journal.name + ".foreign.*"))
    journal.unlink()  # and removed: the status check writes it back
    assert localaws.status()["running"] and journal.read_bytes().startswith(ours)
    localaws.down()
    localaws.up()
    assert "ada-forged" not in _buckets() and {"ada-mine", "ada-next"} <= set(_buckets())


RACE = '''
import json, sys, threading
from pathlib import Path
from werkzeug.test import Client
from labkit.localaws.app import build_app
from labkit.localaws.http import Request

app = build_app(Path(sys.argv[1]), "http://localhost:1", ())
app.journal.rewrite(b"")
passed = threading.Event()
gate = app.grading.gate
def watched(request, write):
    verdict = gate(request, write)
    passed.set()
    return verdict
app.grading.gate = watched
out = {}
app.lock.acquire()  # a change in flight holds the lock
writer = threading.Thread(target=lambda: out.update(status=Client(app).put("/ada-late").status_code))
writer.start()
passed.wait(30)  # let in by the gate while no session was open; now it waits for the lock
opened = app.grading.control(Request({}, "POST", "/_labkit/grading", "", {}, b'{"lockdown": true}'))
app.lock.release()
writer.join(30)
out["opened"] = opened.status
out["lines"] = len(Path(sys.argv[1]).read_bytes().splitlines())
print(json.dumps(out))
'''


def test_a_write_let_in_before_a_lockdown_opened_is_refused_if_it_would_land_inside_it(tmp_path):
    import subprocess
    import sys

    from labkit.config import REPO_ROOT

    # In its own process: building the app patches moto for the whole process.
    done = subprocess.run([sys.executable, "-c", RACE, str(tmp_path / "journal.ndjson")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"opened": 201, "status": 403, "lines": 0}
