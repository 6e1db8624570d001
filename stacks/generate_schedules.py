"""Rewrite the schedules block of stacks/queues.yaml from the app's @schedule handlers.

`python stacks/generate_schedules.py` rewrites it; `--check` only exits 1 when it is stale.
tests/unit/test_templates.py compares the template with the registry on its own, so a stale
block fails the unit tests whether or not this script was run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUEUES = REPO / "stacks" / "queues.yaml"
BEGIN = "  # BEGIN generated schedules"
END = "  # END generated schedules"


def logical_id(handler: str) -> str:
    """`deals_flag_stale` -> `DealsFlagStaleSchedule` (the id the test expects)."""
    return "".join(part.capitalize() for part in handler.split("_")) + "Schedule"


def single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render(schedules: dict[str, str]) -> str:
    blocks = [
        BEGIN + " (python stacks/generate_schedules.py): one per @schedule handler, do not edit",
    ]
    for name in sorted(schedules):
        blocks.append(f"""  {logical_id(name)}:
    Type: AWS::Scheduler::Schedule
    Properties:
      Name: {name}
      Description: {json.dumps(f"Sends the {name} job to the jobs queue")}
      GroupName: !Ref ScheduleGroup
      ScheduleExpression: {json.dumps(schedules[name])}
      ScheduleExpressionTimezone: UTC
      FlexibleTimeWindow:
        Mode: "OFF"
      State: ENABLED
      Target:
        Arn: !GetAtt JobsQueue.Arn
        RoleArn: !GetAtt SchedulerRole.Arn
        Input: {single_quoted(json.dumps({"handler": name}))}
        RetryPolicy:
          MaximumEventAgeInSeconds: 3600
          MaximumRetryAttempts: 5
        DeadLetterConfig:
          Arn: !GetAtt DeadLetterQueue.Arn
""")
    blocks.append(END)
    return "\n".join(blocks)


def current_schedules() -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    import app
    from layers.runtime.dispatch import schedules

    return schedules(app.app)


def main(argv: list[str]) -> int:
    text = QUEUES.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    updated = text[:start] + render(current_schedules()) + text[end:]
    if "--check" in argv:
        if updated != text:
            print(f"{QUEUES.relative_to(REPO)} is stale: run python stacks/generate_schedules.py", file=sys.stderr)
            return 1
        return 0
    QUEUES.write_text(updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
