"""Session rules of Claude Code: what "Allow for this session" allows, and matching.

A rule is derived from the tool use a person allowed, the way Claude Code's own rules read
(``Bash(git push:*)``, an edit under a folder, or the tool itself):

- a shell command allows later commands starting with the same program and subcommand, and
  never a command that chains or redirects (``;``, ``&&``, ``|``, ``$(``…): those are asked;
- a file tool allows the same tool on files under the same folder (no ``..`` escapes);
- any other tool allows that tool with any input.

Pure functions: the gateway shows the hint on the card, the events service keeps the rules.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Any

from cctelegram_common.contracts.claude_code import SessionRule

SHELL_TOOLS = frozenset({"Bash", "BashOutput"})
FILE_TOOLS = {
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}
# Anything that makes one command line run more than its first program, or write elsewhere.
_SHELL_COMPOUND = re.compile(r"[;&|`<>\n]|\$\(")
_SUBCOMMAND = re.compile(r"^[a-z][a-z0-9-]*$")
# Programs whose second word picks what they do (``git push``, ``npm run``): their rules keep
# it, so allowing ``git status`` does not allow ``git push``. Any other program's rule is the
# program itself (allowing ``touch a.txt`` allows ``touch b.txt``).
PROGRAMS_WITH_SUBCOMMANDS = frozenset(
    {
        "apt",
        "apt-get",
        "brew",
        "bun",
        "cargo",
        "composer",
        "deno",
        "docker",
        "dotnet",
        "gcloud",
        "gh",
        "git",
        "go",
        "gradle",
        "helm",
        "kubectl",
        "make",
        "mvn",
        "npm",
        "npx",
        "pip",
        "pip3",
        "pnpm",
        "poetry",
        "systemctl",
        "terraform",
        "uv",
        "yarn",
        "aws",
        "az",
    }
)


def _command_words(command: str) -> list[str] | None:
    """The words of a simple command, or None when it chains, redirects or will not parse."""
    if _SHELL_COMPOUND.search(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return words or None


def _normal_path(path: str) -> str | None:
    if not path.startswith("/") or "\x00" in path:
        return None
    normal = posixpath.normpath(path)
    return normal if ".." not in normal.split("/") else None


def rule_for(tool_name: str, tool_input: dict[str, Any], rule_id: str) -> SessionRule:
    """The rule that allowing this tool use for the session stands for."""
    if tool_name in SHELL_TOOLS:
        words = _command_words(str(tool_input.get("command", "")))
        if words:
            program = posixpath.basename(words[0])
            has_subcommand = (
                program in PROGRAMS_WITH_SUBCOMMANDS
                and len(words) > 1
                and _SUBCOMMAND.match(words[1]) is not None
            )
            prefix = words[:2] if has_subcommand else words[:1]
            return SessionRule(
                rule_id=rule_id, tool_name=tool_name, pattern=" ".join(prefix), kind="command"
            )
        # A compound command: only the same command line again.
        return SessionRule(
            rule_id=rule_id,
            tool_name=tool_name,
            pattern=str(tool_input.get("command", ""))[:500],
            kind="exact",
        )
    field_name = FILE_TOOLS.get(tool_name)
    if field_name is not None:
        path = _normal_path(str(tool_input.get(field_name, "")))
        if path is not None:
            folder = posixpath.dirname(path).rstrip("/") + "/"
            return SessionRule(rule_id=rule_id, tool_name=tool_name, pattern=folder, kind="path")
        return SessionRule(
            rule_id=rule_id,
            tool_name=tool_name,
            pattern=str(tool_input.get(field_name, ""))[:500],
            kind="exact",
        )
    return SessionRule(rule_id=rule_id, tool_name=tool_name, kind="tool")


def rule_hint(tool_name: str, tool_input: dict[str, Any]) -> str:
    """What "Allow for this session" would allow, in words for the card."""
    rule = rule_for(tool_name, tool_input, "hint")
    if rule.kind == "command":
        return f"{tool_name} commands starting with “{rule.pattern}”"
    if rule.kind == "path":
        return f"{tool_name} on files under {rule.pattern}"
    if rule.kind == "exact":
        return f"this exact {tool_name} call again"
    return f"every {tool_name} call"


def matches(rule: SessionRule, tool_name: str, tool_input: dict[str, Any]) -> bool:
    if rule.tool_name != tool_name:
        return False
    if rule.kind == "tool":
        return True
    if rule.kind == "command":
        words = _command_words(str(tool_input.get("command", "")))
        wanted = rule.pattern.split(" ")
        return words is not None and words[: len(wanted)] == wanted
    if rule.kind == "path":
        field_name = FILE_TOOLS.get(tool_name, "file_path")
        path = _normal_path(str(tool_input.get(field_name, "")))
        return path is not None and path.startswith(rule.pattern)
    if rule.kind == "exact":
        field_name = "command" if tool_name in SHELL_TOOLS else FILE_TOOLS.get(tool_name, "")
        return str(tool_input.get(field_name, ""))[:500] == rule.pattern
    return False
