"""What the adapter and the middleware share about one invocation (passed as the Lambda context)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InvocationContext:
    aws_request_id: str
    function_name: str = "crm-api"
    workspace_id: str | None = None
    credential_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:  # LambdaContext compatibility
        return 30_000
