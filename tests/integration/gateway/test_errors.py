"""One error vocabulary: every code has one HTTP status and one MCP error, the same refusal is
the same answer whichever service gave it, and ``ToolError`` is the one refusal type."""

from __future__ import annotations

from typing import get_args

import pytest
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from starlette.testclient import TestClient

from cctelegram_common.contracts.rpc import REFUSAL_CODES, RpcError
from cctelegram_gateway import calls, errors, registry
from cctelegram_gateway.errors import ERROR_RESPONSES, REFUSALS, ErrorDetail, ToolError


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_every_code_has_exactly_one_status_and_mcp_error() -> None:
    codes = set(REFUSALS)
    assert codes >= REFUSAL_CODES  # every RPC refusal code, plus the front door's own
    assert codes == {code for part in get_args(errors.ErrorCode) for code in get_args(part)}
    assert REFUSALS["invalid"].status == 422
    assert REFUSALS["invalid"].status in ERROR_RESPONSES
    assert REFUSALS["internal"].mcp_error == INTERNAL_ERROR
    assert REFUSALS["not_found"].mcp_error == INVALID_PARAMS
    schema = ErrorDetail.model_json_schema()["properties"]["code"]
    listed = {code for part in schema.get("anyOf", [schema]) for code in part["enum"]}
    assert listed == codes  # the OpenAPI document lists them


@pytest.mark.parametrize("code", sorted(REFUSAL_CODES))
def test_an_rpc_refusal_is_the_same_answer_from_every_service(code: str) -> None:
    error = RpcError.model_validate({"code": code, "message": "m", "field": "f"})
    refused = ToolError.from_rpc(error)
    assert (refused.status, refused.code, refused.field) == (REFUSALS[code].status, code, "f")


def test_tool_error_keeps_its_constructor_and_home() -> None:
    assert registry.ToolError is ToolError
    assert calls.CallRefusedError is ToolError  # the old name, not a second type
    default = ToolError("options must be different from each other", field="options")
    assert (default.status, default.code, default.field) == (422, "invalid", "options")
    explicit = ToolError("gone", status=404, code="not_found", field="approval_id")
    assert (explicit.status, explicit.code) == (404, "not_found")
    assert explicit.retry_after_s is None


def test_a_tool_rule_refusal_is_422_with_its_field(client: TestClient, keys) -> None:
    response = client.post(
        "/v1/tools/send_approval_request",
        json={"title": "Deploy?", "description": "d", "options": ["Yes", "Yes"]},
        headers=bearer(keys.admin),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "options")
