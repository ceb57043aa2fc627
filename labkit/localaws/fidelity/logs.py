"""CloudWatch Logs: IAM sees the log group and stream a call touches."""
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
