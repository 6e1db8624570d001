"""The CloudFormation templates lint clean and keep the properties the app relies on."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[2]
ROOT_TEMPLATE = REPO / "template.yaml"
STACKS = REPO / "stacks"
ALL_TEMPLATES = [ROOT_TEMPLATE, *sorted(STACKS.glob("*.yaml"))]
LINT_REGIONS = ["us-east-1"]

APP_SECRETS = {"DATABASE_URL", "CURSOR_SECRET", "SENTRY_DSN"}


# ------------------------------------------------------------------ helpers --
@functools.cache
def load(path: Path) -> dict[str, Any]:
    """Parse a template the way cfn-lint does (short tags become Fn:: dicts)."""
    template, matches = decode(str(path))
    assert not matches, [str(match) for match in matches]
    assert isinstance(template, dict)
    return template


def stack(name: str) -> dict[str, Any]:
    return load(STACKS / f"{name}.yaml")


def resources_of_type(
    template: dict[str, Any], type_: str
) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == type_
    }


def only_resource(template: dict[str, Any], type_: str) -> dict[str, Any]:
    found = resources_of_type(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    properties: dict[str, Any] = next(iter(found.values()))["Properties"]
    return properties


def parameter_bounds(template: dict[str, Any], value: Any) -> tuple[Any, Any, Any]:
    """(default, min, max) of a !Ref'd parameter; a literal stands for all three."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template["Parameters"][value["Ref"]]
        return (
            parameter.get("Default"),
            parameter.get("MinValue"),
            parameter.get("MaxValue"),
        )
    return value, value, value


def resolved_default(template: dict[str, Any], value: Any) -> Any:
    return parameter_bounds(template, value)[0]


def list_items(items: list[Any]) -> Iterator[dict[str, Any]]:
    """Items of a list, looking inside `!If [cond, item, !Ref AWS::NoValue]` entries."""
    for item in items:
        if isinstance(item, dict) and "Fn::If" in item:
            for branch in item["Fn::If"][1:]:
                if branch != {"Ref": "AWS::NoValue"}:
                    yield branch
        else:
            yield item


def container(template: dict[str, Any], name: str) -> dict[str, Any]:
    task_definition = only_resource(template, "AWS::ECS::TaskDefinition")
    found: list[dict[str, Any]] = [
        c for c in task_definition["ContainerDefinitions"] if c["Name"] == name
    ]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]


def get_atts(node: Any) -> Iterator[list[str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                yield list(value)
            else:
                yield from get_atts(value)
    elif isinstance(node, list):
        for value in node:
            yield from get_atts(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ linting --
@pytest.mark.parametrize("path", ALL_TEMPLATES, ids=lambda p: str(p.relative_to(REPO)))
def test_template_passes_cfn_lint(path: Path) -> None:
    # GIVEN a template of the deployment (the root one also validates the
    # parameters it passes to each nested stack, rule E3043)
    # WHEN cfn-lint runs on it with its default rules (errors and warnings)
    matches = lint_file(path, config=ManualArgs(regions=LINT_REGIONS))

    # THEN it reports nothing
    assert [str(match) for match in matches] == []


def test_cfn_lint_catches_a_fargate_service_without_network_configuration(
    tmp_path: Path,
) -> None:
    # GIVEN the mistake cfn-lint once caught in these templates
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      RequiresCompatibilities: [FARGATE]
      NetworkMode: awsvpc
      Cpu: "256"
      Memory: "512"
      ContainerDefinitions:
        - Name: app
          Image: example/app:1
  Service:
    Type: AWS::ECS::Service
    Properties:
      Cluster: default
      LaunchType: FARGATE
      TaskDefinition: !Ref TaskDefinition
      DesiredCount: 1
"""
    )

    # WHEN it is linted the same way
    matches = lint_file(bad, config=ManualArgs(regions=LINT_REGIONS))

    # THEN the linter is live and reports it
    assert any("NetworkConfiguration" in str(match) for match in matches)


# --------------------------------------------------------------- root stack --
def test_root_nests_every_stack_by_relative_template_url() -> None:
    # GIVEN the root template
    nested = resources_of_type(load(ROOT_TEMPLATE), "AWS::CloudFormation::Stack")

    # WHEN its TemplateURLs are read
    urls = {resource["Properties"]["TemplateURL"] for resource in nested.values()}

    # THEN each is a relative path (for `aws cloudformation package`) to a file
    # under stacks/, and every stacks/*.yaml is used
    assert all(not url.startswith(("https://", "http://", "s3://")) for url in urls)
    assert {REPO / url for url in urls} == set(STACKS.glob("*.yaml"))


def test_root_reads_only_outputs_the_nested_stacks_declare() -> None:
    # GIVEN the nested stacks of the root template
    root = load(ROOT_TEMPLATE)
    nested = resources_of_type(root, "AWS::CloudFormation::Stack")

    # WHEN every !GetAtt Stack.Outputs.Name in the root is collected
    references = [
        (resource, attribute.removeprefix("Outputs."))
        for resource, attribute in get_atts(root)
        if resource in nested
    ]

    # THEN each names an output of that stack's template
    assert references
    for resource, output in references:
        child = load(REPO / nested[resource]["Properties"]["TemplateURL"])
        assert output in child.get("Outputs", {}), f"{resource} has no output {output}"


# ------------------------------------------------------------------- queues --
@pytest.mark.parametrize(("queue", "dead_letter_queue"), [("JobsQueue", "DeadLetterQueue"),
                                                          ("BulkQueue", "BulkDeadLetterQueue")])
def test_each_queue_moves_a_message_to_its_own_dlq_after_5_receives(queue: str, dead_letter_queue: str) -> None:
    # GIVEN the queues stack
    template = stack("queues")
    properties = template["Resources"][queue]["Properties"]

    # WHEN the queue's redrive policy is read
    redrive = properties["RedrivePolicy"]

    # THEN failed jobs go to its own dead-letter queue (so a redrive sends
    # them back to the queue they came from) after 5 receives
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letter_queue, "Arn"]}
    assert resolved_default(template, redrive["maxReceiveCount"]) == 5
    assert properties["VisibilityTimeout"] == 120
    retention = template["Resources"][dead_letter_queue]["Properties"]["MessageRetentionPeriod"]
    assert retention == 1209600


def test_queues_are_encrypted_and_scheduler_may_only_send() -> None:
    # GIVEN the queues stack
    template = stack("queues")

    # WHEN the queues and the scheduler's role are read
    queues = resources_of_type(template, "AWS::SQS::Queue")
    role = template["Resources"]["SchedulerRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]

    # THEN every queue uses SSE and the scheduler may only send, to the jobs
    # queue and (for deliveries that keep failing) to the dead-letter queue
    assert set(queues) == {"JobsQueue", "DeadLetterQueue", "BulkQueue", "BulkDeadLetterQueue"}
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "scheduler.amazonaws.com"}
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": [
                {"Fn::GetAtt": ["JobsQueue", "Arn"]},
                {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
            ],
        }
    ]
    for output in (
        "JobsQueueUrl",
        "JobsQueueArn",
        "DeadLetterQueueUrl",
        "DeadLetterQueueArn",
        "BulkQueueUrl",
        "BulkQueueArn",
        "BulkDeadLetterQueueUrl",
        "BulkDeadLetterQueueArn",
        "SchedulerRoleArn",
    ):
        assert output in template["Outputs"]


# ---------------------------------------------------------------- schedules --
def declared_schedules() -> dict[str, dict[str, Any]]:
    return resources_of_type(stack("queues"), "AWS::Scheduler::Schedule")


def test_schedules_in_the_template_are_exactly_the_apps_schedule_handlers() -> None:
    # GIVEN the app's registry of @schedule handlers
    import app  # the composition root; the root conftest has set the test environment
    from layers.runtime.dispatch import schedules

    registry = schedules(app.app)

    # WHEN the schedules in the queues stack are read as (handler, expression)
    declared = {
        json.loads(s["Properties"]["Target"]["Input"])["handler"]: s["Properties"][
            "ScheduleExpression"
        ]
        for s in declared_schedules().values()
    }

    # THEN they are the same, one schedule per handler (a difference means
    # stacks/queues.yaml is stale: run `python stacks/generate_schedules.py`)
    assert len(declared) == len(declared_schedules())
    assert declared == registry


def test_every_job_handler_reads_the_one_queue_the_worker_consumes() -> None:
    # GIVEN the app's job handlers and the worker stack
    from chalice.app import SQSEventConfig

    import app
    from shared.settings import get_settings

    sources = [s for s in app.app.event_sources if isinstance(s, SQSEventConfig)]
    worker = stack("worker")

    # WHEN the queues they name are collected
    named = {(s.queue, s.queue_arn) for s in sources}

    # THEN every handler names the jobs queue (by its default name, never an
    # ARN of its own): the worker runs every handler on messages of both
    # queues it is given, the jobs queue and the bulk queue (the lane is the
    # sender's choice, not the handler's), with their DLQs
    assert sources
    assert named == {(get_settings().jobs_queue_name, None)}
    assert {p for p in worker["Parameters"] if p.endswith("QueueUrl")} == {
        "JobsQueueUrl",
        "DeadLetterQueueUrl",
        "BulkQueueUrl",
        "BulkDeadLetterQueueUrl",
    }


def test_every_schedule_sends_its_handler_to_the_jobs_queue() -> None:
    # GIVEN the schedules of the queues stack
    schedules = declared_schedules()

    # WHEN each one's target and timing are read
    for logical_id, resource in schedules.items():
        properties = resource["Properties"]
        target = properties["Target"]
        body = json.loads(target["Input"])

        # THEN it sends exactly {"handler": NAME} to the jobs queue as the
        # scheduler role, in the stack's group, on time (UTC, no flexible
        # window), retries for an hour and then dead-letters
        assert set(body) == {"handler"}
        name = body["handler"]
        assert logical_id == "".join(p.capitalize() for p in name.split("_")) + "Schedule"
        assert properties["Name"] == name
        assert properties["GroupName"] == {"Ref": "ScheduleGroup"}
        assert properties["ScheduleExpressionTimezone"] == "UTC"
        assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert properties["State"] == "ENABLED"
        assert target["Arn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
        assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        assert target["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": 3600,
            "MaximumRetryAttempts": 5,
        }
        assert target["DeadLetterConfig"] == {
            "Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
        }


# ------------------------------------------------------------ ECS services --
TIERS = ["api", "worker", "realtime"]


@pytest.mark.parametrize("name", TIERS)
def test_fargate_service_runs_in_private_subnets_with_network_configuration(
    name: str,
) -> None:
    # GIVEN a tier's stack
    template = stack(name)

    # WHEN its service and task definition are read
    service = only_resource(template, "AWS::ECS::Service")
    task_definition = only_resource(template, "AWS::ECS::TaskDefinition")

    # THEN it is an awsvpc Fargate task placed in the private subnets
    assert service["LaunchType"] == "FARGATE"
    assert task_definition["RequiresCompatibilities"] == ["FARGATE"]
    assert task_definition["NetworkMode"] == "awsvpc"
    awsvpc = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert awsvpc["Subnets"] == {"Ref": "PrivateSubnetIds"}
    assert awsvpc["AssignPublicIp"] == "DISABLED"
    assert awsvpc["SecurityGroups"]


# Plain variables each tier needs beside the secrets (the realtime tier serves no files).
TIER_ENVIRONMENT = {
    "api": {"REDIS_URL", "FILES_BUCKET", "AWS_REGION", "AWS_DEFAULT_REGION"},
    "worker": {"REDIS_URL", "FILES_BUCKET", "REALTIME_CHANNEL", "AWS_REGION", "AWS_DEFAULT_REGION"},
    "realtime": {"REDIS_URL", "REALTIME_CHANNEL", "AWS_REGION", "AWS_DEFAULT_REGION"},
}


@pytest.mark.parametrize("name", TIERS)
def test_secrets_reach_the_container_through_secrets_not_environment(name: str) -> None:
    # GIVEN a tier's container
    definition = container(stack(name), name)

    # WHEN its environment and secrets are read
    secrets = {item["Name"] for item in list_items(definition["Secrets"])}
    environment = {
        item["Name"]: item["Value"] for item in list_items(definition["Environment"])
    }

    # THEN the app secrets come from Secrets Manager and none is a plain variable
    assert secrets >= APP_SECRETS
    assert not APP_SECRETS & set(environment)
    assert not [
        n for n in environment if any(w in n for w in ("SECRET", "PASSWORD", "DSN"))
    ]
    assert environment["CRM_ENV"] == "production"
    assert TIER_ENVIRONMENT[name] <= set(environment)
    if "FILES_BUCKET" in TIER_ENVIRONMENT[name]:
        assert environment["FILES_BUCKET"] == {"Ref": "FilesBucketName"}
    log = definition["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    assert log["Options"]["awslogs-stream-prefix"] == name


FILES_OBJECTS = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${FilesBucketName}/*"}
FILES_BUCKET = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${FilesBucketName}"}
QUEUES = [{"Ref": "JobsQueueArn"}, {"Ref": "DeadLetterQueueArn"}, {"Ref": "BulkQueueArn"},
          {"Ref": "BulkDeadLetterQueueArn"}]
# What each tier's task role may do, as {resource: actions}: the api only the
# files bucket (its jobs go through the outbox, relayed by the worker); the
# worker the jobs and bulk queues and their DLQs (consume, relay, dead-letter,
# redrive) and the bucket; the realtime tier nothing (MySQL and Redis only).
TASK_GRANTS: dict[str, list[tuple[Any, set[str]]]] = {
    "api": [
        (FILES_OBJECTS, {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging",
                         "s3:AbortMultipartUpload"}),
        (FILES_BUCKET, {"s3:ListBucket"}),
    ],
    "worker": [
        (QUEUES, {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                  "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}),
        (FILES_OBJECTS, {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging",
                         "s3:AbortMultipartUpload"}),
        (FILES_BUCKET, {"s3:ListBucket"}),
    ],
    "realtime": [],
}


@pytest.mark.parametrize("name", TIERS)
def test_task_roles_are_least_privilege(name: str) -> None:
    # GIVEN a tier's IAM roles
    roles = resources_of_type(stack(name), "AWS::IAM::Role")

    # WHEN their inline policy statements are read
    def statements(role: str) -> list[dict[str, Any]]:
        policies = roles[role]["Properties"].get("Policies", [])
        return [s for p in policies for s in p["PolicyDocument"]["Statement"]]

    # THEN nothing is granted on "*", the app may use exactly its queues and
    # the files bucket, and only the ECS agent may read the named secrets
    assert set(roles) == {"ExecutionRole", "TaskRole"}
    for role in roles:
        for statement in statements(role):
            assert statement["Effect"] == "Allow"
            assert "*" not in as_list(statement["Resource"])
            assert all(
                not action.endswith("*") for action in as_list(statement["Action"])
            )
    granted = [
        (s["Resource"], set(as_list(s["Action"]))) for s in statements("TaskRole")
    ]
    assert granted == TASK_GRANTS[name]
    assert "ManagedPolicyArns" not in roles["TaskRole"]["Properties"]
    assert [a for s in statements("ExecutionRole") for a in as_list(s["Action"])] == [
        "secretsmanager:GetSecretValue"
    ]


@pytest.mark.parametrize(("name", "nested"), [("api", "ApiStack"), ("realtime", "RealtimeStack")])
def test_tiers_behind_the_alb_have_no_queue_access_or_queue_parameters(name: str, nested: str) -> None:
    # GIVEN the stack of a tier behind the ALB and the parameters the root passes to it
    template = stack(name)
    passed = load(ROOT_TEMPLATE)["Resources"][nested]["Properties"]["Parameters"]

    # WHEN its parameters and container environment are read
    environment = {i["Name"] for i in list_items(container(template, name)["Environment"])}

    # THEN nothing about the jobs queue reaches it
    assert not [p for p in template["Parameters"] if "Queue" in p]
    assert not [p for p in passed if "Queue" in p]
    assert not [n for n in environment if n.startswith("JOBS_")]


# ---------------------------------------------------------------------- api --
def test_api_container_serves_on_port_3000() -> None:
    # GIVEN the api stack
    template = stack("api")

    # WHEN its container, service and target group are read
    definition = container(template, "api")
    service = only_resource(template, "AWS::ECS::Service")
    target_group = only_resource(template, "AWS::ElasticLoadBalancingV2::TargetGroup")

    # THEN `crm serve --port 3000` is reachable from the ALB on port 3000
    assert definition["Command"][:4] == ["crm", "serve", "--port", "3000"]
    assert [m["ContainerPort"] for m in definition["PortMappings"]] == [3000]
    assert service["LoadBalancers"] == [
        {
            "ContainerName": "api",
            "ContainerPort": 3000,
            "TargetGroupArn": {"Ref": "TargetGroup"},
        }
    ]
    assert target_group["Port"] == 3000
    assert target_group["TargetType"] == "ip"


def test_api_health_checks_use_health_and_ready() -> None:
    # GIVEN the api stack
    template = stack("api")

    # WHEN the container and target-group health checks are read
    definition = container(template, "api")
    target_group = only_resource(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    attributes = {a["Key"]: a["Value"] for a in target_group["TargetGroupAttributes"]}

    # THEN the container probes /health, the ALB probes /ready, and a task
    # drains for 30 s on both sides; the api is not sticky (it keeps no state
    # in a task; Socket.io has its own sticky target group)
    assert any(
        "127.0.0.1:3000/health" in part for part in definition["HealthCheck"]["Command"]
    )
    assert target_group["HealthCheckPath"] == "/ready"
    assert attributes["deregistration_delay.timeout_seconds"] == "30"
    assert definition["StopTimeout"] == 30
    assert attributes.get("stickiness.enabled", "false") == "false"


def test_api_listener_is_https_only_when_a_certificate_is_given() -> None:
    # GIVEN the api stack
    template = stack("api")

    # WHEN the listener that forwards to the service is read
    listener = template["Resources"]["PublicListener"]["Properties"]

    # THEN its protocol follows the certificate condition
    assert template["Conditions"]["HasCertificate"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]
    }
    assert listener["Protocol"] == {"Fn::If": ["HasCertificate", "HTTPS", "HTTP"]}
    assert listener["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}
    ]
    assert template["Resources"]["Service"]["DependsOn"] == "PublicListener"


@pytest.mark.parametrize("name", ["api", "realtime"])
def test_tier_behind_the_alb_scales_from_2_to_10_tasks_on_cpu_and_requests(name: str) -> None:
    # GIVEN the stack of a tier behind the ALB
    template = stack(name)

    # WHEN its scaling target and policies are read
    target = only_resource(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = resources_of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    metrics = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]
        for p in policies.values()
    }

    # THEN it tracks CPU and ALB requests per target (of its own target
    # group) between 2 and 10 tasks, starting from 2
    assert resolved_default(template, target["MinCapacity"]) == 2
    assert resolved_default(template, target["MaxCapacity"]) == 10
    assert parameter_bounds(template, {"Ref": "DesiredCount"})[1:] == (2, 10)
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    (labelled,) = [
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        for p in policies.values()
        if "ResourceLabel" in p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"]
    ]
    assert "${TargetGroup.TargetGroupFullName}" in labelled["ResourceLabel"]["Fn::Sub"]


def test_api_is_behind_a_waf_with_rate_limit_and_common_rules() -> None:
    # GIVEN the api stack
    template = stack("api")

    # WHEN the web ACL and its association are read
    web_acl = only_resource(template, "AWS::WAFv2::WebACL")
    association = only_resource(template, "AWS::WAFv2::WebACLAssociation")
    statements = [rule["Statement"] for rule in web_acl["Rules"]]

    # THEN it rate-limits per IP, applies the AWS common rule set, guards the ALB
    assert web_acl["Scope"] == "REGIONAL"
    assert any("RateBasedStatement" in s for s in statements)
    assert any(
        s.get("ManagedRuleGroupStatement", {}).get("Name")
        == "AWSManagedRulesCommonRuleSet"
        for s in statements
    )
    assert association["ResourceArn"] == {"Ref": "LoadBalancer"}


def listener_rules() -> list[tuple[int, dict[str, Any]]]:
    """(priority, rule) of every rule on the public listener, from whichever stack adds it."""
    return [
        (int(resolved_default(stack(name), rule["Properties"]["Priority"])), rule)
        for name in ("api", "realtime")
        for rule in resources_of_type(stack(name), "AWS::ElasticLoadBalancingV2::ListenerRule").values()
    ]


def path_patterns(rule: dict[str, Any]) -> list[str]:
    conditions = rule["Properties"]["Conditions"]
    assert [c["Field"] for c in conditions] == ["path-pattern"]
    patterns: list[str] = conditions[0]["PathPatternConfig"]["Values"]
    return patterns


def alb_path_matches(pattern: str, path: str) -> bool:
    """The ALB's path-pattern test: case-sensitive, `*` any run of characters, `?` one."""
    return fnmatchcase(path, pattern)


def test_alb_idle_timeout_outlasts_socketio_pings_and_not_the_targets_keep_alive() -> None:
    # GIVEN the ALB, python-socketio's ping interval (a quiet websocket and a
    # held long-polling GET carry nothing for that long) and granian's idle
    # keep-alive limit (its HTTP/1 header_read_timeout, 30 s: measured)
    template = stack("api")
    balancer = only_resource(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    socketio_ping_interval, granian_keep_alive = 25, 30

    # WHEN the idle timeout's default and bounds are read
    default, low, high = parameter_bounds(template, attributes["idle_timeout.timeout_seconds"])

    # THEN every allowed value lies strictly between the two: longer, and the
    # ALB cuts quiet Socket.io clients; shorter than the target's keep-alive,
    # or the ALB reuses connections the server has closed (sporadic 502s)
    assert socketio_ping_interval < low <= default <= high < granian_keep_alive


def test_socketio_rule_forwards_only_socketio_paths_to_the_sticky_realtime_target_group() -> None:
    # GIVEN the realtime stack and the listener rules of both stacks
    template = stack("realtime")
    rules = listener_rules()
    rule = template["Resources"]["ListenerRule"]
    target_group = template["Resources"]["TargetGroup"]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in target_group["TargetGroupAttributes"]}

    # WHEN the rule's condition, action and priority are read
    priorities = [priority for priority, _ in rules]

    # THEN /socket.io/* (and nothing else) goes to the realtime target group,
    # on the api stack's public listener, at a priority no other rule has
    assert path_patterns(rule) == ["/socket.io/*"]
    assert rule["Properties"]["Actions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}
    ]
    assert rule["Properties"]["ListenerArn"] == {"Ref": "ListenerArn"}
    passed = load(ROOT_TEMPLATE)["Resources"]["RealtimeStack"]["Properties"]["Parameters"]
    assert passed["ListenerArn"] == {"Fn::GetAtt": ["ApiStack", "Outputs.PublicListenerArn"]}
    assert stack("api")["Outputs"]["PublicListenerArn"]["Value"] == {"Ref": "PublicListener"}
    assert len(priorities) == len(set(priorities))
    for path in ("/socket.io/", "/socket.io/?EIO=4&transport=polling"):
        assert alb_path_matches("/socket.io/*", path)
    # AND the target group keeps a client on one task (long-polling needs it)
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert int(resolved_default(template, attributes["stickiness.lb_cookie.duration_seconds"])) >= 60
    assert attributes["deregistration_delay.timeout_seconds"] == "30"
    assert template["Resources"]["Service"]["DependsOn"] == "ListenerRule"


def test_metrics_is_not_reachable_through_the_alb() -> None:
    # GIVEN the listener rules of both stacks, the listener's default action and the WAF
    rules = listener_rules()
    api = stack("api")
    web_acl = only_resource(api, "AWS::WAFv2::WebACL")

    # WHEN the rule that matches /metrics first is found (lowest priority number)
    def first_rule(path: str) -> dict[str, Any] | None:
        matching = sorted(
            (priority, index, rule) for index, (priority, rule) in enumerate(rules)
            if any(alb_path_matches(p, path) for p in path_patterns(rule))
        )
        return matching[0][2] if matching else None

    # THEN the listener answers /metrics itself with a 404 (it would otherwise
    # fall through to the api's default action, which serves it), no rule
    # forwards it to any tier, and the WAF blocks it even percent-encoded
    for path in ("/metrics", "/metrics/"):
        rule = first_rule(path)
        assert rule is not None, path
        (action,) = rule["Properties"]["Actions"]
        assert action["Type"] == "fixed-response"
        assert action["FixedResponseConfig"]["StatusCode"] == "404"
    (blocking,) = [r for r in web_acl["Rules"] if r["Name"] == "metrics-not-public"]
    match = blocking["Statement"]["ByteMatchStatement"]
    assert blocking["Action"] == {"Block": {}}
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert (match["PositionalConstraint"], match["SearchString"]) == ("STARTS_WITH", "/metrics")
    assert [t["Type"] for t in sorted(match["TextTransformations"], key=lambda t: t["Priority"])] == [
        "URL_DECODE", "NORMALIZE_PATH"]


# ----------------------------------------------------------------- realtime --
def test_realtime_container_serves_socketio_on_port_3001_in_one_process() -> None:
    # GIVEN the realtime stack
    template = stack("realtime")

    # WHEN its container, service and target group are read
    definition = container(template, "realtime")
    service = only_resource(template, "AWS::ECS::Service")
    target_group = only_resource(template, "AWS::ElasticLoadBalancingV2::TargetGroup")

    # THEN `crm realtime --port 3001` runs one process per task (an Engine.IO
    # session lives in one process; stickiness pins a task, not a process)
    # and is reachable from the ALB on port 3001
    assert definition["Command"] == ["crm", "realtime", "--port", "3001", "--workers", "1"]
    assert [m["ContainerPort"] for m in definition["PortMappings"]] == [3001]
    assert service["LoadBalancers"] == [
        {
            "ContainerName": "realtime",
            "ContainerPort": 3001,
            "TargetGroupArn": {"Ref": "TargetGroup"},
        }
    ]
    assert target_group["Port"] == 3001
    assert target_group["Protocol"] == "HTTP"
    assert target_group["TargetType"] == "ip"


def test_realtime_health_checks_use_health() -> None:
    # GIVEN the realtime stack
    template = stack("realtime")

    # WHEN the container and target-group health checks are read
    definition = container(template, "realtime")
    target_group = only_resource(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    probe = " ".join(definition["HealthCheck"]["Command"])

    # THEN the container probes its /health for liveness (any answer), the ALB
    # wants a 200 from /health (Redis answers), and a task stops within 30 s
    assert "'127.0.0.1', 3001" in probe and "'/health'" in probe
    assert target_group["HealthCheckPath"] == "/health"
    assert target_group["Matcher"] == {"HttpCode": "200"}
    assert definition["StopTimeout"] == 30
    assert only_resource(template, "AWS::ECS::Service")["HealthCheckGracePeriodSeconds"] >= 30


def test_worker_and_realtime_share_the_one_realtime_channel() -> None:
    # GIVEN what the root passes to the worker and realtime stacks
    root = load(ROOT_TEMPLATE)

    # WHEN each container's REALTIME_CHANNEL is followed back to the root
    sources = {}
    for name, nested in (("worker", "WorkerStack"), ("realtime", "RealtimeStack")):
        environment = {
            i["Name"]: i["Value"] for i in list_items(container(stack(name), name)["Environment"])
        }
        passed = root["Resources"][nested]["Properties"]["Parameters"]
        sources[name] = passed[environment["REALTIME_CHANNEL"]["Ref"]]

    # THEN both read the root's one parameter: the relay announces on the
    # channel the realtime tasks listen on, whatever it is set to
    assert sources == {"worker": {"Ref": "RealtimeChannel"}, "realtime": {"Ref": "RealtimeChannel"}}
    assert root["Parameters"]["RealtimeChannel"]["Default"] == "crm:realtime:events"


# ------------------------------------------------------------------ network --
def ingress(template: dict[str, Any], group: str) -> set[tuple[int, int, str]]:
    rules = template["Resources"][group]["Properties"].get("SecurityGroupIngress", [])
    return {(r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]["Ref"]) for r in rules}


def test_security_groups_chain_alb_to_tiers_to_data_stores() -> None:
    # GIVEN the network stack
    template = stack("network")

    # WHEN the security groups' rules are read
    alb_egress = {
        (r["FromPort"], r["ToPort"])
        for r in template["Resources"]["AlbSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    }

    # THEN the ALB reaches the api (3000) and realtime (3001) tasks only, each
    # tier admits its port from the ALB only, the worker admits nothing, and
    # MySQL and Redis admit the three tiers and nobody else
    assert alb_egress == {(3000, 3000), (3001, 3001)}
    assert ingress(template, "ApiSecurityGroup") == {(3000, 3000, "AlbSecurityGroup")}
    assert ingress(template, "RealtimeSecurityGroup") == {(3001, 3001, "AlbSecurityGroup")}
    assert ingress(template, "WorkerSecurityGroup") == set()
    tiers = {"ApiSecurityGroup", "WorkerSecurityGroup", "RealtimeSecurityGroup"}
    assert ingress(template, "DatabaseSecurityGroup") == {(3306, 3306, g) for g in tiers}
    assert ingress(template, "CacheSecurityGroup") == {(6379, 6379, g) for g in tiers}
    passed = load(ROOT_TEMPLATE)["Resources"]["RealtimeStack"]["Properties"]["Parameters"]
    assert passed["RealtimeSecurityGroupId"] == {
        "Fn::GetAtt": ["NetworkStack", "Outputs.RealtimeSecurityGroupId"]}


# ------------------------------------------------------------------- worker --
def test_worker_runs_crm_worker_without_a_load_balancer() -> None:
    # GIVEN the worker stack
    template = stack("worker")

    # WHEN its container and service are read
    definition = container(template, "worker")
    service = only_resource(template, "AWS::ECS::Service")

    # THEN it runs `crm worker`, takes no traffic (its one port is Prometheus)
    # and gets 30 s to stop, of which the worker itself uses 25
    environment = {
        item["Name"]: item["Value"] for item in list_items(definition["Environment"])
    }
    assert definition["Command"] == ["crm", "worker"]
    assert "LoadBalancers" not in service
    assert not resources_of_type(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert [m["ContainerPort"] for m in definition["PortMappings"]] == [
        {"Ref": "MetricsPort"}
    ]
    assert environment["WORKER_METRICS_PORT"] == {"Ref": "MetricsPort"}
    assert resolved_default(template, {"Ref": "MetricsPort"}) == 9100
    assert definition["StopTimeout"] == 30
    assert int(environment["WORKER_STOP_TIMEOUT"]) == 25


def test_worker_gets_both_queue_urls_from_the_queues_stack() -> None:
    # GIVEN the worker container and what the root passes to the worker stack
    environment = {
        item["Name"]: item["Value"]
        for item in list_items(container(stack("worker"), "worker")["Environment"])
    }
    passed = load(ROOT_TEMPLATE)["Resources"]["WorkerStack"]["Properties"]["Parameters"]

    # WHEN the queue variables are followed back to their source
    sources = {
        name: passed[environment[name]["Ref"]]
        for name in ("JOBS_QUEUE_URL", "JOBS_DLQ_URL", "JOBS_BULK_QUEUE_URL", "JOBS_BULK_DLQ_URL",
                     "FILES_BUCKET")
    }

    # THEN they are the queues stack's URLs and the data stack's bucket
    assert sources == {
        "JOBS_QUEUE_URL": {"Fn::GetAtt": ["QueuesStack", "Outputs.JobsQueueUrl"]},
        "JOBS_DLQ_URL": {"Fn::GetAtt": ["QueuesStack", "Outputs.DeadLetterQueueUrl"]},
        "JOBS_BULK_QUEUE_URL": {"Fn::GetAtt": ["QueuesStack", "Outputs.BulkQueueUrl"]},
        "JOBS_BULK_DLQ_URL": {"Fn::GetAtt": ["QueuesStack", "Outputs.BulkDeadLetterQueueUrl"]},
        "FILES_BUCKET": {"Fn::GetAtt": ["DataStack", "Outputs.FilesBucketName"]},
    }


def test_worker_step_scales_1_to_10_on_visible_messages() -> None:
    # GIVEN the worker stack
    template = stack("worker")

    # WHEN its scaling target, policies and alarms are read
    target = only_resource(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = resources_of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")

    # THEN step policies are driven by SQS ApproximateNumberOfMessagesVisible
    # of the jobs and the bulk queue together
    assert resolved_default(template, target["MinCapacity"]) == 1
    assert resolved_default(template, target["MaxCapacity"]) == 10
    assert {p["Properties"]["PolicyType"] for p in policies.values()} == {"StepScaling"}
    triggered = set()
    for alarm in alarms.values():
        properties = alarm["Properties"]
        stats = [m["MetricStat"] for m in properties["Metrics"] if "MetricStat" in m]
        assert {(s["Metric"]["Namespace"], s["Metric"]["MetricName"]) for s in stats} == {
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible")}
        assert sorted(s["Metric"]["Dimensions"][0]["Value"]["Ref"] for s in stats) == [
            "BulkQueueName", "JobsQueueName"]
        (returned,) = [m for m in properties["Metrics"] if m.get("ReturnData")]
        assert returned["Expression"] == "FILL(jobs, 0) + FILL(bulk, 0)"
        triggered |= {action["Ref"] for action in properties["AlarmActions"]}
    assert triggered == set(policies)


# --------------------------------------------------------------------- data --
def test_database_is_multi_az_encrypted_and_backed_up_for_7_days() -> None:
    # GIVEN the data stack
    template = stack("data")

    # WHEN the database instance is read
    database = only_resource(template, "AWS::RDS::DBInstance")
    retention_default, retention_min, _ = parameter_bounds(
        template, database["BackupRetentionPeriod"]
    )

    # THEN it is MySQL 8.0, Multi-AZ, encrypted, protected, with >= 7 days of PITR
    assert database["Engine"] == "mysql"
    assert str(database["EngineVersion"]).startswith("8.0")
    assert database["MultiAZ"] is True
    assert database["StorageEncrypted"] is True
    assert database["DeletionProtection"] is True
    assert database["PubliclyAccessible"] is False
    assert retention_default >= 7
    assert retention_min >= 7
    assert template["Resources"]["Database"]["DeletionPolicy"] == "Snapshot"
    assert "{{resolve:secretsmanager:" in database["MasterUserPassword"]["Fn::Sub"]


def test_redis_fails_over_and_encrypts_in_transit_and_at_rest() -> None:
    # GIVEN the data stack
    template = stack("data")

    # WHEN the Redis replication group is read
    cache = only_resource(template, "AWS::ElastiCache::ReplicationGroup")

    # THEN it is Redis 7 with a replica, failover and both encryptions, and
    # the URL the tasks get uses TLS
    assert cache["Engine"] == "redis"
    assert str(cache["EngineVersion"]).startswith("7")
    assert cache["NumCacheClusters"] >= 2
    assert cache["AutomaticFailoverEnabled"] is True
    assert cache["MultiAZEnabled"] is True
    assert cache["TransitEncryptionEnabled"] is True
    assert cache["AtRestEncryptionEnabled"] is True
    assert template["Outputs"]["RedisUrl"]["Value"]["Fn::Sub"].startswith("rediss://")


def test_files_bucket_is_private_encrypted_tls_only_and_expires_objects() -> None:
    # GIVEN the data stack
    template = stack("data")

    # WHEN the files bucket and its policy are read
    bucket = only_resource(template, "AWS::S3::Bucket")
    policy = only_resource(template, "AWS::S3::BucketPolicy")
    rules = bucket["LifecycleConfiguration"]["Rules"]
    expire_all = [r for r in rules if "TagFilters" not in r and "Prefix" not in r]

    # THEN it blocks public access, encrypts with SSE-S3, refuses plain HTTP,
    # deletes every object after 30 days and exposes its name
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert policy["Bucket"] == {"Ref": "FilesBucket"}
    [deny] = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(expire_all) == 1
    assert resolved_default(template, expire_all[0]["ExpirationInDays"]) == 30
    assert expire_all[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert template["Outputs"]["FilesBucketName"]["Value"] == {"Ref": "FilesBucket"}


# ------------------------------------------------------------ observability --
def test_alarms_cover_errors_latency_dead_letters_and_database_cpu() -> None:
    # GIVEN the observability stack
    template = stack("observability")

    # WHEN the metrics its alarms watch are collected
    alarms = [
        a["Properties"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    ]
    watched = {a["MetricName"]: a for a in alarms
               if "MetricName" in a and a["MetricName"] != "ApproximateNumberOfMessagesVisible"}
    dead_letters = {a["Dimensions"][0]["Value"]["Ref"]: a for a in alarms
                    if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"}
    in_math = {
        m["MetricStat"]["Metric"]["MetricName"]
        for a in alarms
        for m in a.get("Metrics", [])
        if "MetricStat" in m
    }

    # THEN 5xx rate, p95 latency over 500 ms, any message in either DLQ, and RDS CPU alarm
    assert {
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
        "RequestCount",
    } <= in_math
    latency = watched["TargetResponseTime"]
    assert latency["ExtendedStatistic"] == "p95"
    assert float(resolved_default(template, latency["Threshold"])) == 0.5
    assert set(dead_letters) == {"DeadLetterQueueName", "BulkDeadLetterQueueName"}
    for dlq in dead_letters.values():
        assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert watched["CPUUtilization"]["Namespace"] == "AWS/RDS"
    assert template["Resources"]["AlertTopic"]["Condition"] == "HasAlertEmail"
    # AND live updates being down (no healthy realtime task) alarms too
    healthy = watched["HealthyHostCount"]
    assert {d["Name"]: d["Value"] for d in healthy["Dimensions"]} == {
        "LoadBalancer": {"Ref": "LoadBalancerFullName"},
        "TargetGroup": {"Ref": "RealtimeTargetGroupFullName"},
    }
    assert (healthy["Threshold"], healthy["ComparisonOperator"]) == (1, "LessThanThreshold")
