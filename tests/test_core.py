"""The grader's core: registry, read-only enforcement, error mapping, selection, renderers, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import checks
from checks import render
from checks.core import (
    LOCAL_PARTIAL,
    REGISTRY,
    Check,
    Report,
    Result,
    Status,
    UnknownSelection,
    classify_exception,
    passed,
    run_check,
    select,
    skipped,
)
from labkit.target import Target, WriteRefused, is_read


def _check(func, **kw) -> Check:
    fields = dict(id="L99.01", title="A test check", points=2, hint="do it", docs="index.md#x", func=func)
    fields.update(kw)
    return Check(**fields)


# -- read-only ------------------------------------------------------------------

def test_a_write_inside_a_check_is_refused_before_it_is_sent(aws):
    def sneaky(t):
        t.client("s3").create_bucket(Bucket="ada-sneaky")
        return passed("wrote")

    result = run_check(_check(sneaky), aws)
    assert result.status is Status.ERROR
    assert "CreateBucket" in result.message and "read-only" in result.message
    assert aws.client("s3").list_buckets()["Buckets"] == []  # nothing reached the (in-process) AWS


def test_grading_clients_refuse_writes_and_allow_reads(aws):
    grading = aws.for_grading()
    with pytest.raises(WriteRefused):
        grading.client("ssm").put_parameter(Name="/x/y", Value="1", Type="String")
    assert grading.client("s3").list_buckets()["Buckets"] == []
    # The learner's own target still writes.
    aws.client("s3").create_bucket(Bucket="ada-allowed")


@pytest.mark.parametrize("op,read", [("GetObject", True), ("ListBuckets", True), ("DescribeVpcs", True),
                                     ("HeadBucket", True), ("Query", True), ("PutObject", False),
                                     ("CreateBucket", False), ("DeleteBucket", False), ("UpdateDistribution", False),
                                     ("TagResource", False), ("InvokeFunction", False)])
def test_read_operations_are_told_from_writes(op, read):
    assert is_read(op) is read


# -- error mapping ----------------------------------------------------------------

def _client_error(code, http=400, op="GetThing"):
    return ClientError({"Error": {"Code": code, "Message": f"{code} says no"},
                        "ResponseMetadata": {"HTTPStatusCode": http}}, op)


@pytest.mark.parametrize("exc,status,words", [
    (EndpointConnectionError(endpoint_url="http://localhost:1"), Status.ERROR, "labkit up"),
    (_client_error("AccessDenied", 403), Status.ERROR, "read-only policy"),
    (_client_error("ThrottlingException"), Status.ERROR, "throttled"),
    (_client_error("InternalError", 500), Status.ERROR, "internal error"),
    (_client_error("NoSuchBucket", 404), Status.FAIL, "found nothing"),
    (ValueError("boom"), Status.ERROR, "crashed"),
])
def test_exceptions_become_one_sentence_results(exc, status, words):
    target = Target("local", prefix="ada", region="us-east-1", endpoint="http://localhost:1")
    got, message = classify_exception(exc, target)
    assert got is status and words in message
    assert "\n" not in message


def test_a_check_that_returns_nonsense_is_an_error(aws):
    result = run_check(_check(lambda t: "yes"), aws)
    assert result.status is Status.ERROR


def test_skipped_always_says_a_live_account_verifies_it():
    assert "verified on a live account" in skipped("moto cannot show it").message


def test_registering_needs_a_reason_for_offline_gaps_and_a_good_id():
    with pytest.raises(ValueError):
        checks.check("L1.2", "bad id", points=1, hint="h", docs="index.md#x")
    with pytest.raises(ValueError):
        checks.check("L99.02", "no note", points=1, hint="h", docs="index.md#x", local=LOCAL_PARTIAL)


def test_every_registered_check_is_fully_declared():
    checks.load_all()
    for c in REGISTRY.values():
        assert c.title and c.hint and c.points > 0, c.id
        page, _, anchor = c.docs.partition("#")
        assert page.endswith(".md") and anchor, c.id


# -- selection ----------------------------------------------------------------------

@pytest.mark.parametrize("spec,first,count", [("01", "L01.01", None), ("1", "L01.01", None), ("L01.02", "L01.02", 1),
                                              ("l01.02", "L01.02", 1), ("L01.02-L01.04", "L01.02", 3),
                                              ("lab00", "L00.01", None)])
def test_selection(spec, first, count):
    chosen = select(spec)
    assert chosen[0].id == first
    if count:
        assert len(chosen) == count


def test_all_selects_every_check():
    assert len(select("all")) == len(REGISTRY)


@pytest.mark.parametrize("spec", ["7x", "42", "L42.01", "L01.99", ""])
def test_unknown_selection_says_what_exists(spec):
    with pytest.raises(UnknownSelection) as err:
        select(spec)
    assert "00" in str(err.value) and "01" in str(err.value)


@pytest.mark.parametrize("spec", ["L01.05-L01.02", "l01.05 - l01.02"])
def test_a_reversed_range_gets_its_own_sentence(spec):
    with pytest.raises(UnknownSelection) as err:
        select(spec)
    assert str(err.value) == f"The range {spec!r} is reversed; write the lower check first, like L01.02-L01.05."


# -- reports ----------------------------------------------------------------------------

def _report():
    a = _check(None, id="L99.01", points=2)
    b = _check(None, id="L99.02", points=3, title="Second")
    c = _check(None, id="L99.03", points=1, title="Third")
    return Report([Result(a, Status.PASS, "ok"), Result(b, Status.FAIL, "bucket x is public"),
                   Result(c, Status.SKIP, "not shown (verified on a live account)")], target="test")


def test_scores_and_exit_codes():
    report = _report()
    assert (report.earned, report.possible, report.exit_code) == (2, 5, 1)
    assert Report([Result(_check(None), Status.ERROR, "down")]).exit_code == 2
    assert Report([Result(_check(None), Status.SKIP, "n")]).exit_code == 0


def test_json_report_is_gradescope_shaped():
    data = json.loads(render.as_json(_report()))
    assert data["score"] == 2 and data["max_score"] == 5
    passed_case, failed_case, skipped_case = data["tests"]
    assert passed_case["status"] == "passed" and passed_case["result"] == "PASS" and passed_case["score"] == 2
    assert failed_case["result"] == "FAIL" and failed_case["status"] == "failed"
    assert failed_case["score"] == 0 and failed_case["max_score"] == 3
    assert failed_case["hint"] and failed_case["docs"].startswith("http") and "bucket x" in failed_case["message"]
    assert skipped_case["result"] == "SKIP" and "status" not in skipped_case and skipped_case["max_score"] == 0
    assert sum(t["max_score"] for t in data["tests"]) == data["max_score"]  # totals agree for Gradescope


def test_junit_report_counts_failures_and_skips():
    root = ET.fromstring(render.junit(_report()).split("\n", 1)[1])
    assert root.get("failures") == "1" and root.get("skipped") == "1" and root.get("tests") == "3"
    assert root.find(".//failure").get("message") == "bucket x is public"


def test_text_and_html_reports_name_every_check():
    report = _report()
    text = render.text(report, color=False)
    assert all(i in text for i in ("L99.01", "L99.02", "L99.03")) and "hint: do it" in text
    assert "\033[" in render.text(report, color=True)
    html = report._repr_html_()
    assert "<table" in html and "bucket x is public" in html


def test_notebook_run_reports_bad_input_in_one_sentence():
    problem = checks.run("nonsense")
    assert "nonsense" in str(problem) and "<div" in problem._repr_html_()


# -- the CLI -----------------------------------------------------------------------------

def _cli(*args, env=None):
    import os

    full_env = {**os.environ, **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}  # None removes a variable
    return subprocess.run([sys.executable, "-m", "checks", *args], capture_output=True, text=True, env=full_env,
                          timeout=60)


def test_cli_unknown_lab_is_one_sentence_and_exit_2():
    run = _cli("7x")
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_cli_without_local_aws_is_one_sentence_and_exit_2(free_port):
    run = _cli("01", env={"LABS_AWS_PORT": str(free_port)})
    assert run.returncode == 2 and "labkit up" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_cli_live_without_credentials_is_one_sentence_and_exit_2(tmp_path):
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None}
    run = _cli("01", "--live", env=env)
    assert run.returncode == 2 and "credentials" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_cli_bad_flag_is_one_sentence_and_exit_2():
    run = _cli("01", "--format", "yaml")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


def test_cli_lists_checks_without_running_them():
    run = _cli("01", "--list")
    assert run.returncode == 0 and "L01.11" in run.stdout


# -- catalogue ---------------------------------------------------------------------------

def test_catalogue_and_fidelity_table_come_from_the_registry():
    from checks.catalogue import catalogue_markdown, fidelity_markdown

    catalogue, fidelity = catalogue_markdown(), fidelity_markdown()
    for c in REGISTRY.values():
        assert f"`{c.id}`" in catalogue
        assert (f"`{c.id}`" in fidelity) == (c.local != "full")


def test_the_fidelity_page_lists_every_place_the_local_aws_is_stricter_than_moto():
    from checks.catalogue import fidelity_markdown
    from labkit.localaws.fidelity import stricter_than_moto

    page, rules = fidelity_markdown(), stricter_than_moto()
    assert {"ecs", "ecr", "elbv2", "s3"} <= {name for name, _ in rules}
    assert all(text and f"- {text}" in page for _, text in rules)


def test_notebook_run_without_local_aws_says_how_to_start_it(free_port, monkeypatch):
    monkeypatch.setenv("LABS_AWS_PORT", str(free_port))
    problem = checks.run("01")
    assert isinstance(problem, checks.Problem) and "labkit up" in str(problem)
