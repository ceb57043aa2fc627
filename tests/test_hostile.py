"""Hostile submissions: learner code that tries to change the account or its own grade, one path per row.

Each row's ``get_order`` makes its attack, swallows whatever it raises, and returns None (a wrong answer),
so the attack's only way to a PASS is the attack itself. Every row proves both halves: the account is
unchanged (the journal holds as many changes as before and the attack's item or table is absent) and the
grade is unchanged (L04.04 gives the same status as the plain wrong module, and the other checks of the
same run give the very results they give the plain wrong module).
"""
from __future__ import annotations

import fcntl
import textwrap
import time

import pytest

import checks
from checks import learner
from checks.core import Status
from labkit.config import state_dir
from labkit.localaws.control import journal_path
from labkit.localaws.journal import count_changes

from .states_lab04 import build_lab04, module_defining, module_path

pytestmark = pytest.mark.server
GRADED = "L04.04-L04.06"
ITEM = '{"customerId": {"S": "hostile"}, "orderId": {"S": "pwned"}}'
WRITE = f'TableName=table, Item={ITEM}'


def _module(attack: str, *, imports: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(attack).strip("\n"), " " * 8)
    return module_defining(get_order=f'''
def get_order(client, table, customer_id, order_id):
    import os, sys, json, subprocess, time{imports}
    try:
{body}
    except BaseException:
        pass
    return None
''')


PLAIN = _module("pass")
ATTACKS = {
    "writes-through-the-given-client": f"client.put_item({WRITE})",
    "copies-the-client": f'''
        import boto3
        creds = client._request_signer._credentials
        twin = boto3.client("dynamodb", endpoint_url=client.meta.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
        twin.put_item({WRITE})''',
    "unregisters-the-hooks": f'''
        import botocore.hooks
        client.meta.events._emitter = botocore.hooks.HierarchicalEmitter()
        client.meta.events.register("request-created", client._request_signer.handler)
        client.put_item({WRITE})''',
    "calls-make-request": f'''
        from botocore.awsrequest import prepare_request_dict
        model = client.meta.service_model.operation_model("PutItem")
        request = client._serializer.serialize_to_request({{"TableName": table, "Item": {ITEM}}}, model)
        prepare_request_dict(request, endpoint_url=client.meta.endpoint_url, context={{}}, user_agent="x")
        client._make_request(model, request, {{}})''',
    "own-client-default-credentials": f'''
        import boto3
        boto3.client("dynamodb").put_item({WRITE})''',
    "own-client-learner-credentials": f'''
        import boto3
        boto3.client("dynamodb", aws_access_key_id="testing", aws_secret_access_key="testing").put_item({WRITE})''',
    "labkit-target": f'''
        import labkit
        from labkit.target import Target
        for t in (labkit.target(), Target("local", endpoint=os.environ.get("AWS_ENDPOINT_URL"))):
            try:
                t.client("dynamodb").put_item({WRITE})
            except Exception:
                pass''',
    "subprocess": '''
        code = ("import boto3; boto3.client('dynamodb', aws_access_key_id='testing', aws_secret_access_key='testing')"
                ".create_table(TableName='ada-pwned', BillingMode='PAY_PER_REQUEST', "
                "KeySchema=[{'AttributeName': 'k', 'KeyType': 'HASH'}], "
                "AttributeDefinitions=[{'AttributeName': 'k', 'AttributeType': 'S'}])")
        subprocess.run([sys.executable, "-c", code], timeout=10)''',
    "raw-http-with-the-secret": '''
        import urllib.request
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        secret = ""
        for folder in (STATE_FOLDER, os.environ.get("LABKIT_HOME", "")):
            try:
                secret = open(os.path.join(folder, "secret")).read().strip() or secret
            except OSError:
                pass
        for path in ("/_labkit/reset", "/_labkit/restore"):
            try:
                urllib.request.urlopen(urllib.request.Request(endpoint + path, data=b"{}", method="POST",
                                       headers={"X-Labkit-Secret": secret}), timeout=5)
            except Exception:
                pass''',
    "appends-to-the-journal": '''
        line = json.dumps({"service": "dynamodb", "action": "CreateTable", "pwned": True})
        with open(os.path.join(STATE_FOLDER, "journal.ndjson"), "a") as journal:
            journal.write(line + "\\n")''',
    "patches-the-grader": '''
        import checks.core
        from checks.core import Outcome, Status
        checks.core.run_check = lambda *a, **k: None
        checks.core.passed = checks.core.failed = lambda message: Outcome(Status.PASS, message)
        checks.core.Outcome = lambda status, message: Outcome(Status.PASS, message)''',
    "patches-botocore": '''
        import botocore.client
        botocore.client.BaseClient._make_api_call = lambda self, op, params: {"Item": {}, "Items": [], "Count": 0}''',
    "background-writer": '''
        code = ("import fcntl, json, sys, time, boto3; lock = open(sys.argv[1], 'w'); fcntl.flock(lock, fcntl.LOCK_EX); "
                "lock.write('started'); lock.flush(); time.sleep(30); "
                "boto3.client('dynamodb', aws_access_key_id='testing', aws_secret_access_key='testing')"
                ".put_item(TableName=sys.argv[2], Item=json.loads(sys.argv[3]))")
        subprocess.Popen([sys.executable, "-c", code, LOCK_FILE, table, json.dumps(HOSTILE_ITEM)],
                         start_new_session=True)
        for _ in range(100):
            if os.path.exists(LOCK_FILE) and open(LOCK_FILE).read():
                break
            time.sleep(0.1)''',
}


def _grade(t):
    report = checks.grade(checks.select(GRADED), t)
    return {r.check.id: (r.status, r.message) for r in report.results}


def _pwned(t, state) -> bool:
    client = t.client("dynamodb")
    item = client.get_item(TableName=state["table"], Key={"customerId": {"S": "hostile"}, "orderId": {"S": "pwned"}})
    return "Item" in item or "ada-pwned" in client.list_tables()["TableNames"]


@pytest.fixture
def graded(local_target, tmp_path):
    """(write the module, grade it): a built lab 04 on the running local AWS, its journal counted."""
    state = build_lab04(local_target, module=PLAIN)
    plain = _grade(local_target)
    before = count_changes(journal_path())

    def run(source: str):
        (tmp_path / "lock").unlink(missing_ok=True)
        known = (f"STATE_FOLDER = {str(state_dir())!r}  # what an attacker could know of this machine\n"
                 f"LOCK_FILE = {str(tmp_path / 'lock')!r}\nHOSTILE_ITEM = {ITEM}\n\n")
        module_path().write_text(known + source)
        return _grade(local_target)

    return state, plain, before, run


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_hostile_module_changes_neither_the_account_nor_the_grade(graded, local_target, tmp_path, attack):
    state, plain, before, run = graded
    got = run(_module(ATTACKS[attack]))
    assert plain["L04.04"][0] is Status.FAIL, plain
    assert got["L04.04"][0] is plain["L04.04"][0], got["L04.04"]
    assert {k: v for k, v in got.items() if k != "L04.04"} == {k: v for k, v in plain.items() if k != "L04.04"}
    if attack == "background-writer":
        lock = tmp_path / "lock"
        assert lock.read_text() == "started"  # it did start, and held its lock
        with open(lock) as handle:  # free again: the process died with the run, before its write
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert count_changes(journal_path()) == before
    assert not _pwned(local_target, state)
    assert (state_dir() / "journal.ndjson").read_text().count("pwned") == 0


# The hog keeps the default wall: the memory limit must end it, and a loaded machine may take more than a
# short wall to start the child and fill its address space.
@pytest.mark.parametrize("attack, says, wall", [
    ("while True:\n    pass", "get_order was stopped after 3 s", 3.0),
    ("hog = []\nwhile True:\n    hog.append(bytearray(64 << 20))", "get_order ran out of memory", learner.WALL_S),
])
def test_a_runaway_function_is_stopped_with_one_sentence(graded, monkeypatch, attack, says, wall):
    state, plain, before, run = graded
    monkeypatch.setattr(learner, "WALL_S", wall)
    source = module_defining(get_order="def get_order(client, table, customer_id, order_id):\n" +
                             textwrap.indent(attack, "    ") + "\n")
    got = run(source)
    assert got["L04.04"][0] is Status.FAIL and says in got["L04.04"][1], got["L04.04"]
    assert count_changes(journal_path()) == before


def test_isolation_is_named():
    assert learner.isolation() in learner.PHRASES.values()


@pytest.mark.parametrize("forked", [False, True], ids=["own-child", "forked-by-zygote"])
def test_the_child_cannot_see_the_state_folder_or_other_processes(tmp_path, forked):
    """Where namespaces work, the learner's child sees an empty state folder, frozen code, and no process but
    the grading run's own children (itself alone, or, forked by the run's zygote, the zygote and its siblings)."""
    if learner.isolation() != learner.PHRASES["namespaces"]:
        pytest.skip("user namespaces are not available here: a plain child process with limits is used")
    folder = state_dir()
    (folder / "secret-probe").write_text("x")
    path = tmp_path / "probe.py"
    path.write_text(textwrap.dedent(f'''
        import os
        def look():
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            seen = {{"state": sorted(os.listdir({str(folder)!r})), "pids": pids,
                    "commands": [open(f"/proc/{{p}}/cmdline", "rb").read().split(b"\\0")[2:3] for p in pids]}}
            try:
                open({str(learner.REPO_ROOT / "checks" / "probe.txt")!r}, "w")
                seen["frozen"] = False
            except OSError:
                seen["frozen"] = True
            return seen
    '''))
    zygote = learner.Zygote() if forked else None
    try:
        if zygote:  # a sibling, so the probe has one to see
            sibling = learner.Session({"module": str(path), "functions": ["look"]}, aws={}, zygote=zygote)
            assert sibling.defined == ["look"]
        with learner.Session({"module": str(path), "functions": ["look"]}, aws={}, zygote=zygote) as session:
            assert isinstance(session.process, learner._Forked) == forked
            seen = session.step({"call": "look"})["value"]
    finally:
        if zygote:
            sibling.close()
            zygote.close()
    assert seen["state"] == [] and seen["frozen"] is True
    if forked:
        assert len(seen["pids"]) == 3 and "1" in seen["pids"], seen
        assert {tuple(c) for c in seen["commands"]} == {(str(learner.CHILD),)}, seen  # learner_child.py, nothing else
    else:
        assert seen["pids"] == ["1"]


def test_a_module_in_a_folder_the_child_cannot_see_is_still_graded():
    """The state folder is hidden from the child; a work folder inside it (a layout some set up) still grades."""
    path = state_dir() / "work" / "inside.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("def answer():\n    return 42\n")
    with learner.Session({"module": str(path), "functions": ["answer"]}, aws={}) as session:
        assert session.step({"call": "answer"})["value"] == 42


def test_judging_the_writes_sends_nothing_to_an_endpoint_in_the_environment(local_target, monkeypatch):
    """The write sandbox is hermetic: with AWS_ENDPOINT_URL naming the running local AWS,
    L04.13 and L04.14 still judge in the child's own moto, and the local AWS journals nothing."""
    build_lab04(local_target, orders=None, stock_levels=None)
    before = count_changes(journal_path())
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_target.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", local_target.endpoint)
    report = checks.grade(checks.select("L04.13-L04.14"), local_target)
    assert [r.status for r in report.results] == [Status.PASS, Status.PASS], report
    assert count_changes(journal_path()) == before


@pytest.mark.parametrize("zygote_first", [False, True], ids=["session-first", "zygote-first"])
def test_the_zygote_ends_before_the_lockdown_lifts(graded, local_target, monkeypatch, zygote_first):
    """Whatever a check left running ends with the run's zygote, and that happens before the grading session
    closes (its lockdown lifts), even when the zygote was started first (a sandbox check before the reads)."""
    from labkit.localaws import control
    from labkit.target import Target

    runs, seen = [], []
    close, for_grading = control.GradingSession.close, Target.for_grading

    def grading_target(self):
        made = for_grading(self)
        if zygote_first:
            learner._zygote(made)
        runs.append(made)
        return made

    def closing(session):
        zygote = runs[-1]._memo.get("learner.zygote")
        seen.append(zygote is not None and zygote.process.poll() is None)  # still running as the lockdown lifts?
        close(session)

    monkeypatch.setattr(Target, "for_grading", grading_target)
    monkeypatch.setattr(control.GradingSession, "close", closing)
    checks.grade(checks.select(GRADED), local_target)
    assert seen == [False] and runs[-1]._memo.get("learner.zygote") is None
