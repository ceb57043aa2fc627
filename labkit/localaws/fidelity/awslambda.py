"""Lambda: moto stores functions; the Lambda runner extension runs them.
A statement id names one statement of a function's policy, as on AWS."""
from __future__ import annotations


def apply() -> None:
    from moto.core.config import default_user_config

    # FACTS: without Docker, moto's Lambda must use its stub backend, chosen before any Lambda call.
    default_user_config["lambda"] = {"use_docker": False}


def apply_models() -> None:
    """add_permission with a statement id the policy already has is AWS's ResourceConflictException.

    moto appends a second statement of the same id, so a lab 03 cell re-run without removing
    its statement first works offline (and leaves two grants) and fails on AWS.
    """
    import json

    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.policy import Policy

    original = Policy.add_statement

    def add_statement(self, raw, qualifier=None):
        sid = (json.loads(raw) or {}).get("StatementId")
        if sid and any(st.get("Sid") == sid for st in self.statements):
            raise LambdaClientError("ResourceConflictException", f"The statement id ({sid}) provided already exists. "
                                    "Please provide a new statement id, or remove the existing statement.")
        return original(self, raw, qualifier)

    Policy.add_statement = add_statement
