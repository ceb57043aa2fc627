"""Lab text, hints and checks say the same thing: each test would catch one way they drift apart."""
from __future__ import annotations

import re

import pytest

import checks
from checks.core import REGISTRY, Status
from labkit.assets import CONTENT_TYPES, SITE_DIR, site_files
from labkit.authoring.notebooks import labs

from .conftest import grade
from .states import build_lab01

LABS = ("00", "01", "02", "03")
# Names a hint gives as what not to use; the lab text rightly never writes them.
NAMED_AS_WRONG = {"AmazonDynamoDBFullAccess"}


def hint_names(hint: str) -> set[str]:
    """The API calls and parameters (snake_case, CamelCase) and values (redirect-to-https) a hint tells one to use."""
    return (set(re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", hint))
            | set(re.findall(r"\b[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+\b", hint))
            | set(re.findall(r"\b[a-z]+(?:-[a-z]+){2,}\b", hint))) - NAMED_AS_WRONG


def _lab_checks():
    checks.load_all()
    return [c for c in sorted(REGISTRY.values(), key=lambda c: c.id) if c.lab in LABS]


@pytest.mark.parametrize("chk", _lab_checks(), ids=lambda c: c.id)
def test_every_name_a_hint_gives_is_in_the_lab(chk):
    source = {lab.number: lab.text() for lab in labs()}[chk.lab]
    missing = sorted(n for n in hint_names(chk.hint) if n not in source)
    assert not missing, f"{chk.id}'s hint names {missing}, which course/{chk.lab}-*.py never uses or mentions"


def test_settings_are_tagged_the_way_the_hint_says():
    """put_parameter refuses Tags with Overwrite=True on AWS: hint and notebook both tag with add_tags_to_resource."""
    hint = REGISTRY["L00.04"].hint
    source = next(lab for lab in labs() if lab.number == "00").text()
    assert "add_tags_to_resource" in hint and "add_tags_to_resource" in source
    assert "Pass Tags" not in hint and not re.search(r"put_parameter\([^)]*Tags=", source)


def test_the_content_types_the_hint_and_text_name_are_the_ones_accepted():
    hint = REGISTRY["L01.04"].hint
    text = next(lab for lab in labs() if lab.number == "01").text()
    for suffix, kind in CONTENT_TYPES.items():
        assert f"{kind} for {suffix}" in hint
        assert f"`{kind}`" in text
    assert "text/javascript" == CONTENT_TYPES[".js"]  # the HTML standard's type for scripts
    assert {p.suffix for p in site_files()} <= set(CONTENT_TYPES)


@pytest.mark.parametrize("path", site_files(), ids=lambda p: p.name)
def test_l01_04_accepts_exactly_the_type_its_message_asks_for(aws, path):
    key = path.relative_to(SITE_DIR).as_posix()
    build_lab01(aws, content_types={key: "application/octet-stream"})
    result = grade(aws.for_grading(), "L01.04")
    asked = re.search(rf"{re.escape(key)} is application/octet-stream, expected (\S+?)[.;]", result.message)
    assert result.status is Status.FAIL and asked, result.message
    aws.client("s3").put_object(Bucket=aws.name("site", aws.account_id), Key=key, Body=path.read_bytes(),
                                ContentType=asked.group(1))
    assert grade(aws.for_grading(), "L01.04").status is Status.PASS


def test_the_catalogue_heads_each_lab_with_its_notebooks_title():
    """Service names keep their spelling (API, DynamoDB, DAX): the title comes from the heading, not the file name."""
    from checks.catalogue import catalogue_markdown

    headings = [line for line in catalogue_markdown().splitlines() if line.startswith("## Lab ")]
    assert "## Lab 02: API first" in headings
    for lab in labs():
        first = next(line for line in lab.text().splitlines() if line.startswith("# # Lab "))
        if any(c.lab == lab.number for c in REGISTRY.values()):
            assert f"## {first[4:]}" in headings


def test_the_concept_page_names_the_content_types_the_check_accepts():
    from labkit.config import REPO_ROOT

    page = (REPO_ROOT / "site" / "labs" / "01-static-front-end.md").read_text()
    for kind in CONTENT_TYPES.values():
        assert f"`{kind}`" in page
    assert "`application/javascript` or" not in page


def test_lab03_text_names_the_runtimes_and_timeouts_the_check_accepts():
    from checks.lab03 import API_TIMEOUT_S, RUNTIMES

    text = next(lab for lab in labs() if lab.number == "03").text()
    assert f"`{RUNTIMES[0]}` to `{RUNTIMES[-1]}`" in text
    assert f"{API_TIMEOUT_S} seconds API" in text
