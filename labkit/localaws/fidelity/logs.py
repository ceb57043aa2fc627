"""CloudWatch Logs: IAM sees the log group and stream a call touches, and retention periods
are the ones CloudWatch offers."""
from __future__ import annotations

from .iam import request_body


def apply() -> None:
    """As for DynamoDB: moto would check Logs calls against Resource "*"."""
    from moto.logs.responses import LogsResponse

    def resource(self):
        data = request_body(self)
        group = data.get("logGroupName")
        if not group:
            return "*"
        arn = f"arn:aws:logs:{self.region}:{self.current_account}:log-group:{group}"
        return f"{arn}:log-stream:{data['logStreamName']}" if data.get("logStreamName") else f"{arn}:*"

    LogsResponse._determine_resource = resource


# The retention periods CloudWatch Logs accepts (PutRetentionPolicy's enum); moto stores any number.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)


def apply_models() -> None:
    """A lab 03 log group kept for 10 days works on moto and is refused by AWS: refuse it here too."""
    from moto.logs.exceptions import InvalidParameterException
    from moto.logs.models import LogsBackend

    original = LogsBackend.put_retention_policy

    def put_retention_policy(self, log_group_name, retention_in_days):
        if retention_in_days not in RETENTION_DAYS:
            raise InvalidParameterException(
                constraint=f"Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]",
                parameter="retentionInDays", value=retention_in_days)
        return original(self, log_group_name, retention_in_days)

    LogsBackend.put_retention_policy = put_retention_policy
