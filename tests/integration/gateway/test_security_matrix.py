"""No unauthorised success: every kind of bad key, and every role, against every registered
tool (REST and MCP), resource and endpoint; plus hypothesis-made Authorization headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Role
from cctelegram_gateway import tools
from cctelegram_gateway.registry import registry

tools.load_all()  # the matrix covers whatever tools are registered

MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
# An argument no tool accepts: an allowed call stops at validation (422), with no side effect.
PROBE = {"__not_an_argument__": 1}
PROTECTED_ENDPOINTS = [
    ("POST", "/v1/integrations/alertmanager", {"alerts": []}),
    ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/hooks/claude-code", {"hook_event_name": "Stop", "session_id": "s"}),
]


def rest(client: TestClient, spec: Any, headers: dict[str, str]) -> Any:
    if spec.rest_method.upper() == "GET":
        return client.get(spec.route, params=PROBE, headers=headers)
    return client.post(spec.route, json=PROBE, headers=headers)


class McpResponse:
    """The HTTP response of one JSON-RPC call, plain JSON or (tools that may wait for a
    person) one SSE stream whose last event is the result."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers

    def json(self) -> Any:
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            data = [
                line.removeprefix("data:").strip()
                for line in self.response.text.splitlines()
                if line.startswith("data:")
            ]
            return json.loads(data[-1])
        return self.response.json()


def mcp(client: TestClient, method: str, params: dict[str, Any], headers: dict[str, str]) -> Any:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    return McpResponse(client.post("/mcp", json=body, headers={**MCP_HEADERS, **headers}))


def test_every_bad_key_is_refused_everywhere(client: TestClient, keys) -> None:
    tools = list(registry)
    assert tools, "no tools registered"
    credentials: dict[str, dict[str, str]] = {"missing": {}}
    credentials |= {kind: {"Authorization": f"Bearer {key}"} for kind, key in keys.bad().items()}
    credentials["not bearer"] = {"Authorization": f"Basic {keys.admin}"}
    for kind, headers in credentials.items():
        for spec in tools:
            response = rest(client, spec, headers)
            assert response.status_code == 401, (kind, spec.name, response.text)
            response = mcp(client, "tools/call", {"name": spec.name, "arguments": {}}, headers)
            assert response.status_code == 401, (kind, spec.name)
        for method, path, body in PROTECTED_ENDPOINTS:
            response = client.request(method, path, json=body, headers={**MCP_HEADERS, **headers})
            assert response.status_code == 401, (kind, path)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_exactly_its_permissions(client: TestClient, keys, role: Role) -> None:
    headers = {"Authorization": f"Bearer {keys.role(role)}"}
    permitted = ROLE_PERMISSIONS[role]
    listed = mcp(client, "tools/list", {}, headers).json()["result"]["tools"]
    assert {tool["name"] for tool in listed} == {
        spec.name for spec in registry if spec.permission in permitted
    }
    for spec in registry:
        response = rest(client, spec, headers)
        called = mcp(client, "tools/call", {"name": spec.name, "arguments": PROBE}, headers)
        result = called.json()["result"]
        assert result["isError"] is True
        if spec.permission in permitted:
            assert response.status_code == 422, (role, spec.name, response.text)
            assert "permission" not in result["content"][0]["text"]
        else:
            assert response.status_code == 403, (role, spec.name, response.text)
            assert spec.permission.value in response.json()["error"]["message"]
            assert spec.permission.value in result["content"][0]["text"]
    resources = mcp(client, "resources/list", {}, headers).json()["result"]["resources"]
    assert {resource["uri"] for resource in resources} == {
        uri for uri, spec in registry.resources.items() if spec.permission in permitted
    }
    for uri, spec in registry.resources.items():
        if spec.permission not in permitted:
            refused = mcp(client, "resources/read", {"uri": uri}, headers).json()
            assert "error" in refused, (role, uri)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    header=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
        st.builds(lambda tail: f"Bearer cctg_{tail}", st.text(max_size=80).map(str.strip)),
        st.tuples(st.integers(0, 60), st.sampled_from("aZ9_-")),
    ),
    tool=st.sampled_from(sorted(spec.name for spec in registry) or ["none"]),
)
def test_no_made_up_authorization_header_gets_through(
    client: TestClient, keys, header: Any, tool: str
) -> None:
    if isinstance(header, tuple):  # one character of a real key changed
        index, replacement = header
        real = keys.admin
        if real[index] == replacement:
            return
        header = "Bearer " + real[:index] + replacement + real[index + 1 :]
    spec = registry.get(tool)
    assert spec is not None
    try:
        response = rest(client, spec, {"Authorization": header})
    except UnicodeEncodeError:
        return  # not sendable as an HTTP header at all
    assert response.status_code == 401, (header, response.status_code)


# --- the REST resources (/v1/events, /v1/approvals, ...): the tool each one runs decides ---------
RESOURCE_PATH_VALUES = {
    "event_id": "0123abcd",
    "approval_id": "0123abcd",
    "action": "start",
    "key_id": "AAAAAAAAAAAA",
}


def resource_routes(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, concrete path, tool) of every route tagged ``resources``."""
    found = []
    for route in client.gateway.fastapi.routes:  # type: ignore[attr-defined]
        if "resources" not in (getattr(route, "tags", None) or []):
            continue
        path = route.path.format(**RESOURCE_PATH_VALUES)
        tool = route.openapi_extra["x-cctelegram-tool"]
        found.extend((method, path, tool) for method in route.methods)
    return found


def test_resources_refuse_every_bad_key(client: TestClient, keys) -> None:
    routes = resource_routes(client)
    assert len(routes) >= 9
    credentials = [{}, *({"Authorization": f"Bearer {key}"} for key in keys.bad().values())]
    for headers in credentials:
        for method, path, _tool in routes:
            response = client.request(method, path, json=PROBE, headers=headers)
            assert response.status_code == 401, (method, path, headers)


@pytest.mark.parametrize("role", list(Role))
def test_resources_follow_their_tools_permissions(client: TestClient, keys, role: Role) -> None:
    headers = {"Authorization": f"Bearer {keys.role(role)}"}
    permitted = ROLE_PERMISSIONS[role]
    for method, path, tool in resource_routes(client):
        spec = registry.get(tool)
        assert spec is not None, tool
        response = client.request(method, path, json=PROBE, headers=headers)
        if spec.permission in permitted:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
            assert response.status_code < 500 or response.status_code == 503, response.text
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert spec.permission.value in response.json()["error"]["message"]


# --- files (/v1/files): an upload needs events:send, a download events:read -------------------
FILE_ROUTES = [
    ("POST", "/v1/files", "events:send"),
    ("GET", "/v1/files/0123abcd", "events:read"),
]


def test_files_refuse_every_bad_key(client: TestClient, keys) -> None:
    credentials = [{}, *({"Authorization": f"Bearer {key}"} for key in keys.bad().values())]
    for headers in credentials:
        for method, path, _permission in FILE_ROUTES:
            response = client.request(method, path, json=PROBE, headers=headers)
            assert response.status_code == 401, (method, path, headers)


@pytest.mark.parametrize("role", list(Role))
def test_files_follow_their_permissions(client: TestClient, keys, role: Role) -> None:
    headers = {"Authorization": f"Bearer {keys.role(role)}"}
    permitted = {permission.value for permission in ROLE_PERMISSIONS[role]}
    for method, path, permission in FILE_ROUTES:
        response = client.request(method, path, json=PROBE, headers=headers)
        if permission in permitted:
            # Allowed: the JSON probe is not a multipart upload (422); the id names no file (404).
            assert response.status_code == (422 if method == "POST" else 404), response.text
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert permission in response.json()["error"]["message"]
