"""Lambda: moto stores functions; the Lambda runner extension runs them."""
from __future__ import annotations


def apply() -> None:
    from moto.core.config import default_user_config

    # FACTS: without Docker, moto's Lambda must use its stub backend, chosen before any Lambda call.
    default_user_config["lambda"] = {"use_docker": False}
