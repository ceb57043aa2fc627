"""What the Lambda and ECS runners share: a role's session credentials, and CloudWatch Logs delivery.

Both run learner code as a role (Lambda's execution role, a task's task role) and
deliver its output to CloudWatch Logs as a role: the session credentials come from
moto's STS, so the local AWS enforces the role's policies on every call signed with
them (``fidelity/iam.py``), and a role without log rights loses its logs, as on AWS.
"""
from __future__ import annotations

import secrets
import threading


def assume_role(host, account: str, region: str, role_arn: str, session_name: str) -> dict:
    """Session credentials of ``role_arn`` from moto's STS:
    {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration" (ISO 8601)}."""
    from moto.sts.models import sts_backends

    def look():
        # Fresh randomness (read_backend puts the seeded generator back afterwards): otherwise two
        # sessions made between the same two writes would get the same access key id, and one would
        # replace the other in moto's key table.
        host.random.seed(secrets.randbits(64))
        session = sts_backends[account]["aws"].assume_role(
            region_name=region, role_session_name=session_name[:64], role_arn=role_arn,
            policy=None, duration=43200, external_id=None)
        return {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret_access_key,
                "SessionToken": session.session_token,
                "Expiration": session.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}

    return host.read_backend(look)


class Clients:
    """boto3 clients of the local AWS signed with given session credentials, one per (service, region, key)."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str, creds: dict):
        import boto3
        from botocore.config import Config

        ident = (service, region, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        with self._lock:
            client = self._clients.get(ident)
            if client is None:
                client = boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                                      aws_access_key_id=creds["AccessKeyId"],
                                      aws_secret_access_key=creds["SecretAccessKey"],
                                      aws_session_token=creds["SessionToken"],
                                      config=Config(retries={"max_attempts": 1}))
                self._clients[ident] = client
            return client

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()


def put_log_events(client, group: str, stream: str, events: list[dict], create_group: bool = True) -> None:
    """Deliver ``events`` to ``group``/``stream``, creating the stream (and the group when
    ``create_group``) on first use, as Lambda and the awslogs driver do; the role's errors propagate."""
    try:
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    except client.exceptions.ResourceNotFoundException:
        try:
            client.create_log_stream(logGroupName=group, logStreamName=stream)
        except client.exceptions.ResourceNotFoundException:
            if not create_group:
                raise
            client.create_log_group(logGroupName=group)
            client.create_log_stream(logGroupName=group, logStreamName=stream)
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
