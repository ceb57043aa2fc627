"""Every place where the local AWS deliberately differs from moto, one module per service
(and ``speed``: work moto repeats per request, remembered, with no change of behaviour).

moto is the store; these patches make it answer as AWS does where a lab can
see the difference. ``apply_models()`` holds the patches the course's
in-process tests need too (so both grade the same facts); ``apply_server()``
adds what only the long-running process needs. Both are safe to call twice.
"""
from __future__ import annotations

import ast
from pathlib import Path

_applied: set[str] = set()
# Modules that change no answer (repeatable ids, speed): not part of what the docs list.
_NOT_BEHAVIOUR = {"__init__", "core", "speed"}


def _once(name: str) -> bool:
    if name in _applied:
        return False
    _applied.add(name)
    return True


def apply_models() -> None:
    """Model patches: what moto stores or answers differently from AWS."""
    if not _once("models"):
        return
    from . import (apigateway, applicationautoscaling, awslambda, cloudfront, cognitoidp, ec2, ecr, ecs, elasticache,
                   elbv2, logs, privatelink, s3)

    apigateway.apply()
    applicationautoscaling.apply()
    awslambda.apply_models()
    logs.apply_models()
    cloudfront.apply()
    cognitoidp.apply()
    elasticache.apply()
    s3.apply()
    ecs.apply()
    ecr.apply()
    elbv2.apply()
    ec2.apply()  # before privatelink, which refuses an endpoint before moto makes its interfaces
    privatelink.apply()
    ec2.apply()


def apply_server() -> None:
    """Everything the local AWS process needs: the model patches, plus determinism and IAM."""
    apply_models()
    if not _once("server"):
        return
    from . import awslambda, core, dynamodb, iam, logs, secrets, speed

    speed.apply()
    awslambda.apply()
    core.apply()
    iam.apply()
    dynamodb.apply()
    logs.apply()
    secrets.apply()


def stricter_than_moto() -> list[tuple[str, str]]:
    """Each service module's name and the opening of its docstring: where the local AWS answers
    as AWS does rather than as moto. Read from the source, so the docs build imports no moto."""
    out = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem in _NOT_BEHAVIOUR:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        out.append((path.stem, " ".join(doc.split("\n\n")[0].split())))
    return out
