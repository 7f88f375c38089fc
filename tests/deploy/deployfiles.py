"""What the deploy tests read: the services as the code declares them, the Dockerfile template
as each image's build sees it, nats-server's configuration format, and the files under
deploy/."""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cctelegram_common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Every image is built from one template, with the target and build arguments of images.toml.
DOCKERFILE = DEPLOY / "images" / "Dockerfile"
IMAGES: dict[str, dict[str, Any]] = tomllib.loads((DEPLOY / "images" / "images.toml").read_text())


@dataclass(frozen=True)
class ServiceInfo:
    """One service as its package declares it (pyproject, settings class)."""

    name: str  # directory name: gateway, bridge-manager, ...
    directory: Path
    package: str  # cctelegram-gateway
    script: str  # console script: cctelegram-gateway
    entry_point: str  # cctelegram_gateway.__main__:main
    module: str  # cctelegram_gateway
    env_prefix: str  # GATEWAY_
    http_port: int  # the settings' default
    workspace_dependencies: tuple[str, ...]  # directories of workspace packages it needs

    @property
    def dockerfile(self) -> Path:
        return DOCKERFILE


def _workspace_packages() -> dict[str, Path]:
    packages: dict[str, Path] = {}
    for pyproject in sorted(ROOT.glob("*/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        packages[project["name"]] = pyproject.parent
    return packages


def package_info(directory: Path) -> tuple[str, str, str, tuple[str, ...]]:
    project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    ((script, entry_point),) = project["scripts"].items()
    workspace = _workspace_packages()
    needed: list[str] = []
    pending = [project["name"]]
    while pending:  # the package and every workspace package it depends on, transitively
        name = pending.pop()
        path = workspace[name]
        if str(path.relative_to(ROOT)) in needed:
            continue
        needed.append(str(path.relative_to(ROOT)))
        deps = tomllib.loads((path / "pyproject.toml").read_text())["project"]["dependencies"]
        pending += [re.split(r"[<>=!~\[ ;]", dep)[0] for dep in deps]
        pending = [dep for dep in pending if dep in workspace]
    return project["name"], script, entry_point, tuple(sorted(needed))


def discover_services() -> list[ServiceInfo]:
    services: list[ServiceInfo] = []
    for directory in sorted((ROOT / "services").iterdir()):
        if not (directory / "pyproject.toml").exists():
            continue
        package, script, entry_point, needed = package_info(directory)
        module = entry_point.split(":")[0].split(".")[0]
        settings_module = importlib.import_module(f"{module}.settings")
        settings_class = next(
            value
            for value in vars(settings_module).values()
            if isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value is not ServiceSettings
            and value.__module__ == settings_module.__name__
        )
        http_factory = settings_class.model_fields["http"].default_factory
        assert http_factory is not None
        services.append(
            ServiceInfo(
                name=directory.name,
                directory=directory,
                package=package,
                script=script,
                entry_point=entry_point,
                module=module,
                env_prefix=str(settings_class.model_config.get("env_prefix")),
                http_port=http_factory().port,  # type: ignore[call-arg]
                workspace_dependencies=needed,
            )
        )
    return services


SERVICES = discover_services()
SERVICE_NAMES = [service.name for service in SERVICES]


# --- Dockerfiles --------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def read_dockerfile(path: Path) -> list[list[Instruction]]:
    """The instructions of a Dockerfile, one list per stage (continuations joined)."""
    stages: list[list[Instruction]] = [[]]
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, arguments = logical.partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return stages


def render_dockerfile(
    target: str, build_args: dict[str, str], path: Path = DOCKERFILE
) -> list[list[Instruction]]:
    """The template as one image's build sees it: the preamble, then the stages the target
    needs, the target's own chain of ``FROM <stage>`` joined into one runtime stage (last).

    ``${ARG}`` / ``$ARG`` references to the file's ARGs take the build argument, else the
    ARG's default; other variables (PATH, ...) are left as written."""
    preamble, *stages = read_dockerfile(path)
    defaults: dict[str, str] = {}
    for instruction in (i for stage in [preamble, *stages] for i in stage):
        if instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            defaults.setdefault(name, default)
    values = {**defaults, **build_args}

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return values[name] if name in values else match.group(0)

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, text)

    def render(stage: list[Instruction]) -> list[Instruction]:
        return [Instruction(i.keyword, expand(i.arguments)) for i in stage]

    def name(stage: list[Instruction]) -> str:
        return stage[0].arguments.split()[-1]

    by_name = {name(stage): stage for stage in stages}
    chain = [by_name[target]]
    while (parent := chain[0][0].arguments.split()[0]) in by_name:
        chain.insert(0, by_name[parent])
    runtime = [chain[0][0]] + [i for stage in chain for i in stage[1:]]
    # The other stages the runtime copies from, transitively (the builder, uv).
    wanted: set[str] = set()
    pending = [runtime]
    while pending:
        for instruction in pending.pop():
            source = re.match(r"--from=(\S+)", instruction.arguments)
            if instruction.keyword == "FROM":
                source = re.match(r"(\S+)", instruction.arguments)
            if source and source.group(1) in by_name and source.group(1) not in wanted:
                wanted.add(source.group(1))
                pending.append(by_name[source.group(1)])
    needed = [stage for stage in stages if name(stage) in wanted and stage not in chain]
    return [render(preamble), *(render(stage) for stage in needed), render(runtime)]


# --- nats-server configuration --------------------------------------------------------------
class NatsConfError(ValueError):
    pass


class NatsConfReader:
    """Reads the subset of nats-server's config format our files use: blocks, arrays,
    ``key: value`` / ``key = value`` / ``key value``, comments, ``include``, and ``$NAME``
    variables (a block's own definitions first, else left as the literal ``$NAME``)."""

    _END_OF_BARE_VALUE = set(" \t\r\n,]}")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text()
        self.at = 0

    def _skip(self) -> None:
        while self.at < len(self.text):
            char = self.text[self.at]
            if char in " \t\r\n,;":
                self.at += 1
            elif char == "#" or self.text.startswith("//", self.at):
                while self.at < len(self.text) and self.text[self.at] != "\n":
                    self.at += 1
            else:
                return

    def read(self) -> dict[str, Any]:
        return self._block(end=None, scopes=[])

    def _block(self, end: str | None, scopes: list[dict[str, Any]]) -> dict[str, Any]:
        block: dict[str, Any] = {}
        while True:
            self._skip()
            if self.at >= len(self.text):
                if end is not None:
                    raise NatsConfError(f"{self.path}: missing {end!r}")
                return block
            if end is not None and self.text[self.at] == end:
                self.at += 1
                return block
            key = self._key()
            while self.text[self.at] in " \t":
                self.at += 1
            if self.text[self.at] in ":=":
                self.at += 1
            if key == "include":
                self._skip()
                included = self.path.parent / self._bare()
                block.update(NatsConfReader(included).read())
                continue
            block[key] = self._value([*scopes, block])

    def _key(self) -> str:
        if self.text[self.at] in "\"'":
            return self._quoted()
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in " \t\r\n:={":
            self.at += 1
        return self.text[start : self.at]

    def _quoted(self) -> str:
        quote = self.text[self.at]
        end = self.text.index(quote, self.at + 1)
        value = self.text[self.at + 1 : end]
        self.at = end + 1
        return value

    def _bare(self) -> str:
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in self._END_OF_BARE_VALUE:
            self.at += 1
        return self.text[start : self.at]

    def _value(self, scopes: list[dict[str, Any]]) -> Any:
        self._skip()
        char = self.text[self.at]
        if char == "{":
            self.at += 1
            return self._block("}", scopes)
        if char == "[":
            self.at += 1
            items: list[Any] = []
            while True:
                self._skip()
                if self.text[self.at] == "]":
                    self.at += 1
                    return items
                items.append(self._value(scopes))
        if char in "\"'":
            return self._quoted()
        word = self._bare()
        if word.startswith("$"):
            for scope in reversed(scopes):
                if word[1:] in scope:
                    return scope[word[1:]]
        if word in ("true", "false"):
            return word == "true"
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        return word


def read_nats_conf(path: Path) -> dict[str, Any]:
    return NatsConfReader(path).read()


def password_variables(path: Path = DEPLOY / "nats" / "users.conf") -> list[str]:
    """The environment variables users.conf reads (``$NATS_..._PASSWORD``)."""
    return sorted(set(re.findall(r"password:\s*\$([A-Z0-9_]+)", path.read_text())))


def env_without_nats() -> dict[str, str]:
    """The environment minus anything that would point a child process elsewhere."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NATS_", "CCTELEGRAM_"))
        and not any(key.startswith(service.env_prefix) for service in SERVICES)
    }
