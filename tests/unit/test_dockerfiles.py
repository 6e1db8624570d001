"""The three tier images share one build, run as a non-root user, and agree with their task definitions."""

from __future__ import annotations

import json
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from tests.unit.test_templates import container, stack

REPO = Path(__file__).resolve().parents[2]
TIERS = ["api", "worker", "realtime"]
# Tiers the ALB sends traffic to, with the port the image exposes and the task maps.
SERVED_PORTS = {"api": 3000, "realtime": 3001}
SUBCOMMANDS = {"api": "serve", "worker": "worker", "realtime": "realtime"}

Instruction = tuple[str, str]


def instructions(tier: str) -> list[Instruction]:
    """(KEYWORD, arguments) of Dockerfile.<tier>, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for line in (REPO / f"Dockerfile.{tier}").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, f"Dockerfile.{tier} ends inside a continued line"
    return result


def stages(tier: str) -> dict[str, list[Instruction]]:
    """The image's stages by name (`FROM image AS name`), each without its FROM."""
    found: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for keyword, arguments in instructions(tier):
        if keyword == "FROM":
            name = arguments.split()[-1]
            current = found.setdefault(name, [])
            current.append((keyword, arguments))
        else:
            assert current is not None, f"Dockerfile.{tier} has an instruction before FROM"
            current.append((keyword, arguments))
    return found


def only(tier: str, keyword: str) -> str:
    found = [arguments for k, arguments in stages(tier)["runtime"] if k == keyword]
    assert len(found) == 1, f"expected one {keyword} in Dockerfile.{tier}'s runtime stage, found {found}"
    return found[0]


@pytest.mark.parametrize("tier", TIERS)
def test_every_tier_image_is_the_same_build_of_the_one_package(tier: str) -> None:
    # GIVEN a tier's Dockerfile and the api's
    # WHEN their build stages and how the runtime stage gets the venv are compared
    build, runtime = stages(tier)["build"], stages(tier)["runtime"]

    # THEN the build is the api's, instruction for instruction (one package,
    # three entry points), and the runtime stage takes only the venv from it
    assert build == stages("api")["build"]
    assert runtime[0] == ("FROM", "python:3.11-slim AS runtime")
    assert [a for k, a in runtime if k == "COPY"] == ["--from=build /opt/venv /opt/venv"]


@pytest.mark.parametrize("tier", TIERS)
def test_every_tier_image_runs_as_a_numeric_non_root_user(tier: str) -> None:
    # GIVEN a tier's Dockerfile
    # WHEN its runtime user is read
    user, _, group = only(tier, "USER").partition(":")

    # THEN it is a numeric uid:gid other than root's (checkable without /etc/passwd)
    assert user.isdigit() and group.isdigit()
    assert int(user) != 0 and int(group) != 0


@pytest.mark.parametrize("tier", TIERS)
def test_image_command_is_the_start_of_its_task_definitions(tier: str) -> None:
    # GIVEN a tier's Dockerfile and its task definition
    image = json.loads(only(tier, "CMD"))
    task = container(stack(tier), tier)["Command"]

    # WHEN the two commands are compared up to the image's options
    # THEN the task runs the image's command and port (the task may set
    # other options, such as its worker count, differently)
    assert image[:2] == ["crm", SUBCOMMANDS[tier]]
    assert task[:4] == image[:4]


@pytest.mark.parametrize("tier", list(SERVED_PORTS))
def test_served_tier_image_exposes_and_probes_the_port_its_task_maps(tier: str) -> None:
    # GIVEN a tier the ALB serves: its Dockerfile and its task definition
    port = SERVED_PORTS[tier]
    definition = container(stack(tier), tier)

    # WHEN the image's port and health check are read
    health = only(tier, "HEALTHCHECK")

    # THEN the image exposes the port the task maps and probes /health on it
    assert only(tier, "EXPOSE") == str(port)
    assert [m["ContainerPort"] for m in definition["PortMappings"]] == [port]
    assert "/health" in health
    assert f"127.0.0.1:{port}" in health or f"'127.0.0.1', {port}" in health


def test_realtime_image_fails_its_build_when_the_tiers_package_is_not_installed() -> None:
    # GIVEN the realtime Dockerfile (its runtime stage holds no sources)
    runtime = stages("realtime")["runtime"]

    # WHEN the commands it runs after installing the venv are read
    checks = [json.loads(a) for k, a in runtime if k == "RUN" and a.startswith("[")]

    # THEN it runs the tier's command once at build time, as the runtime user
    assert ["crm", "realtime", "--help"] in checks
    keywords = [k for k, _ in runtime]
    assert keywords.index("USER") < max(i for i, (k, a) in enumerate(runtime) if k == "RUN")


def test_every_top_level_package_beside_app_py_goes_into_the_images() -> None:
    # GIVEN the top-level packages of the repository (tiers/, functions/, ...)
    packages = sorted(
        p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"
    )
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"]["include"]
    ignored = [
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    # WHEN each is checked against the build context and the package include
    # THEN the image's `pip install .` gets every one of them
    assert packages
    for package in packages:
        assert package not in ignored, f".dockerignore keeps {package}/ out of the image"
        assert any(fnmatchcase(package, pattern) for pattern in include), (
            f"pyproject.toml's packages include lacks {package}*: the images would not install it")
