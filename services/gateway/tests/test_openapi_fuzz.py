"""schemathesis, in-process, against /openapi.json: ≥ 1,000 generated requests with and without
a key; no 500, every documented response matches its schema. Then the same over the REST
resources only (tag ``resources``), ≥ 1,000 cases of their own.

The gateway runs on a NATS of its own with no events / bridge-manager / auth services, so
tools that depend on them answer the documented 503 ``unavailable`` (counted, and allowed
only in that exact shape). Authentication is a fixed in-process table here: the real auth
path is covered by the other tests. ``wait_for_approval`` is left out: it blocks by design.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cctelegram_common.apikeys import generate_key
from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role, VerifyResponse
from cctelegram_common.settings import NatsSettings
from cctelegram_gateway.app import create_app
from cctelegram_gateway.settings import GatewaySettings
from cctelegram_gateway.tools import approvals
from cctelegram_testing.gateway import lifespan_app
from cctelegram_testing.nats import NatsServer

pytestmark = pytest.mark.slow
KEY = generate_key().full
# The REST resources get a run of their own, with more cases each (≥ 1,000 in all).
RESOURCE_EXAMPLES_PER_OPERATION = 80
EXAMPLES_PER_OPERATION = 18
# test_resources_fuzz covers the long-poll (with a shortened appear-grace).
BLOCKING = {"wait_for_approval", "get_approval_resource"}
# Tools left out of the authenticated run because of a known bug; keep this empty.
KNOWN_BUGS: set[str] = set()


async def fixed_keys(presented: str, _request_id: str | None) -> VerifyResponse:
    if presented != KEY:
        return VerifyResponse(valid=False, reason="unknown")
    principal = Principal(
        client_id="fuzzer",
        key_id=KEY.split("_")[1],
        role=Role.ADMIN,
        permissions=ROLE_PERMISSIONS[Role.ADMIN],
    )
    return VerifyResponse(valid=True, principal=principal)


def fuzz(
    operation: object,
    headers: dict[str, str],
    checks: list[object],
    examples: int = EXAMPLES_PER_OPERATION,
) -> None:
    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    run()


# The app runs in schemathesis' portal thread while Hypothesis generates cases here; its NATS
# client draws from the global `random` (reconnect jitter, inbox ids) at the same time, which
# Hypothesis mistakes for a strategy using `random`. Nothing in the strategies does.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    fresh_nats: NatsServer,
) -> None:
    settings_ = GatewaySettings(
        nats=NatsSettings(urls=[fresh_nats.url]),
        allowed_hosts=["testserver", "testserver:*"],
        verify_timeout_s=0.5,
    )
    gateway = create_app(settings_)
    gateway.verifier.ask = fixed_keys
    schema = schemathesis.openapi.from_asgi("/openapi.json", lifespan_app(gateway))
    statuses: Counter[int] = Counter()
    unavailable: Counter[str] = Counter()
    failures: dict[str, str] = {}

    def no_server_error(_ctx: object, response: object, case: object) -> bool:
        status = response.status_code  # type: ignore[attr-defined]
        statuses[status] += 1
        if status < 500:
            return True
        body = json.loads(response.content)  # type: ignore[attr-defined]
        assert status == 503, f"{status} from {case.operation.label}: {body}"  # type: ignore[attr-defined]
        assert body["error"]["code"] == "unavailable", body
        unavailable[case.operation.label] += 1  # type: ignore[attr-defined]
        return True

    checks = [
        no_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        if operation.definition.raw.get("operationId") in BLOCKING:
            continue
        authenticated = operation.definition.raw.get("operationId") not in KNOWN_BUGS
        for headers in ({"Authorization": f"Bearer {KEY}"} if authenticated else {}, {}):
            try:
                fuzz(operation, headers, checks)
            except Exception as failure:  # collect them all, then report together
                inner = getattr(failure, "exceptions", ())
                detail = " | ".join(str(error)[:700] for error in inner) or str(failure)
                failures[operation.label] = detail[:1500]
    total = sum(statuses.values())
    print(f"schemathesis: {total} cases, statuses {dict(statuses)}, 503 by op {dict(unavailable)}")
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
    assert total >= 1000
    assert statuses[401] > 0
    assert sum(count for status, count in statuses.items() if 200 <= status < 300) > 0


@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_resources_fuzz_no_server_error_and_no_schema_mismatch(
    fresh_nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approvals, "APPEAR_GRACE_S", 0.05)
    settings_ = GatewaySettings(
        nats=NatsSettings(urls=[fresh_nats.url]),
        allowed_hosts=["testserver", "testserver:*"],
        verify_timeout_s=0.5,
    )
    gateway = create_app(settings_)
    gateway.verifier.ask = fixed_keys
    schema = schemathesis.openapi.from_asgi("/openapi.json", lifespan_app(gateway))
    statuses: Counter[int] = Counter()
    by_operation: Counter[str] = Counter()
    failures: dict[str, str] = {}

    def no_server_error(_ctx: object, response: object, case: object) -> bool:
        status = response.status_code  # type: ignore[attr-defined]
        statuses[status] += 1
        by_operation[case.operation.label] += 1  # type: ignore[attr-defined]
        if status < 500:
            return True
        body = json.loads(response.content)  # type: ignore[attr-defined]
        assert status == 503, f"{status} from {case.operation.label}: {body}"  # type: ignore[attr-defined]
        assert body["error"]["code"] == "unavailable", body
        return True

    checks = [
        no_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if "resources" in (result.ok().definition.raw.get("tags") or [])
    ]
    assert len(operations) >= 9
    for operation in operations:
        for headers in ({"Authorization": f"Bearer {KEY}"}, {}):
            try:
                fuzz(operation, headers, checks, RESOURCE_EXAMPLES_PER_OPERATION)
            except Exception as failure:  # collect them all, then report together
                inner = getattr(failure, "exceptions", ())
                detail = " | ".join(str(error)[:700] for error in inner) or str(failure)
                failures[operation.label] = detail[:1500]
    total = sum(statuses.values())
    print(f"schemathesis (resources): {total} cases, statuses {dict(statuses)}")
    print(f"by operation: {dict(by_operation)}")
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
    assert total >= 1000
    assert statuses[401] > 0
    assert statuses[422] > 0
