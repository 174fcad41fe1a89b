"""The contract as a description (issue 25): every node serves ``GET /openapi.json``, built from the
same declarations as its route table (nodes/runtime/contract.py), and schemathesis, reading only
that description, sends a bounded number of generated requests — valid ones and invalid ones —
to a live front-end, catalog replica and order replica, with and without the cluster secret. No
answer may be a 5xx, and every error must be JSON ``{"message": ...}`` with a status the
description lists for that route (docs/api.md)."""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from nodes.runtime.catalog.app import init_app as catalog_app
from nodes.runtime.config import CatalogConfig, FrontendConfig, OrderConfig
from nodes.runtime.frontend.app import init_app as frontend_app
from nodes.runtime.order.app import init_app as order_app
from nodes.runtime.signing import SECRET_HEADER
from tests.support import fast_timeouts, make_cluster, start

pytestmark = pytest.mark.timeout(150)

#: Generated requests per route, per generation mode (valid, invalid): bounded for 2 shared cores,
#: and the same ones every run. To explore, BAZAR_CONTRACT_EXAMPLES=500 draws that many, fresh each run.
EXPLORING = bool(os.environ.get("BAZAR_CONTRACT_EXAMPLES"))
EXAMPLES = int(os.environ.get("BAZAR_CONTRACT_EXAMPLES") or 12)
NODES = ("frontend", "catalog0", "order0")
#: With the secret these would change the cluster under the other cases (slow it, cut it off,
#: reset it): their answers to a caller with no secret (401) are still checked.
ADMIN_WRITES = "POST /admin/"
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    supervisor = start(make_cluster(tmp_path_factory.mktemp("contract"), catalogs=2, orders=1,
                                    timeouts=fast_timeouts()))
    try:
        asyncio.run(_settled(supervisor))
        yield supervisor
    finally:
        supervisor.close()


async def _settled(supervisor) -> None:
    try:
        await supervisor.wait_settled()
    finally:
        await supervisor.aclose()  # its session belongs to this loop


@pytest.fixture(scope="module")
def http():
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    yield session
    session.close()


def description(cluster, name: str, http: requests.Session) -> dict[str, Any]:
    answer = http.get(cluster.node(name).address + "/openapi.json", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _app_routes(role: str) -> set[tuple[str, str]]:
    """What the service's aiohttp app routes, built in this process as the node builds it."""
    secret = "s"
    app = {"frontend": lambda: frontend_app(FrontendConfig("frontend", secret=secret, catalogs=["http://a"],
                                                           orders=["http://b"])),
           "catalog": lambda: catalog_app(CatalogConfig("catalog", secret=secret)),
           "order": lambda: order_app(OrderConfig("order", secret=secret, catalog="http://a"))}[role]()
    return {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource is not None}


@pytest.mark.parametrize("name", NODES)
def test_each_node_describes_exactly_the_routes_it_has(cluster, http, name):
    document = description(cluster, name, http)  # public: no secret sent
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert described == _app_routes(name.rstrip("0123456789"))
    assert document["openapi"].startswith("3.")
    scheme = document["components"]["securitySchemes"]["BazarSecret"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": SECRET_HEADER}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            internal = path.startswith(("/admin/", "/rep/", "/update/", "/invalidate/", "/orders"))
            assert ("security" in operation) == internal, (method, path)
            assert ("401" in operation["responses"]) == internal, (method, path)
            # Every described route is routed: its answer is its handler's, not the router's 404 or
            # 405. Book 0 and a body that is not JSON: refused by the handler, so nothing changes.
            answer = http.request(method.upper(), cluster.node(name).address + path.replace("{id}", "0")
                                  .replace("{topic}", "t"), data=b"x", timeout=10,
                                  headers={SECRET_HEADER: cluster.secret, "Content-Type": "application/json"})
            assert answer.status_code != 405 and "No such endpoint" not in answer.text, (method, path, answer.text)


class Fuzz:
    """Schemathesis over every operation of one node's description, counting what it sees. Each
    case is sent twice: with no secret at all (internal routes must answer 401 and change
    nothing), then with the cluster's. Drawing them once for both halves the cost, most of it
    Hypothesis drawing cases (py-spy: 1 % of the time waited for answers)."""

    def __init__(self, document: dict[str, Any], address: str, secret: str, http: requests.Session) -> None:
        self.schema = schemathesis.openapi.from_dict(document)
        self.address, self.secret, self.http = address, secret, http
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.cases = 0

    def run(self) -> None:
        for result in self.schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                self.run_operation(operation, mode)

    def run_operation(self, operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
        documented = {int(status) for status in operation.definition.raw["responses"]}

        @settings(max_examples=EXAMPLES, phases=[Phase.explicit, Phase.generate], deadline=None, database=None,
                  derandomize=not EXPLORING, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: schemathesis.Case) -> None:
            self.cases += 1
            generated = case.headers
            for secret in (None, self.secret):
                if secret and operation.label.startswith(ADMIN_WRITES):
                    continue
                # No secret at all, not even one schemathesis made up; then the cluster's.
                case.headers = generated if secret else {k: v for k, v in (generated or {}).items()
                                                         if k.lower() != SECRET_HEADER.lower()}
                headers = {SECRET_HEADER: secret} if secret else {}
                self.check(operation, mode, case, headers, documented)
            case.headers = generated

        try:
            one()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to make invalid: no input

    def check(self, operation: schemathesis.APIOperation, mode: GenerationMode, case: schemathesis.Case,
              headers: dict[str, str], documented: set[int]) -> None:
        response = case.call(base_url=self.address, session=self.http, headers=headers, timeout=15)
        self.statuses[response.status_code] += 1
        problem = _error_problem(response, documented)
        if not headers and operation.definition.raw.get("security") and response.status_code != 401:
            problem = problem or f"an internal route answered {response.status_code} to a caller with no secret"
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            problem = problem or "; ".join(sorted({type(f).__name__ for f in group.exceptions}))
        except AssertionError as error:
            problem = problem or str(error).splitlines()[0]
        if problem:
            self.failures.append(
                f"{operation.label} [{mode.value}, {'secret' if headers else 'no secret'}] {problem}: "
                f"{case.method} {case.formatted_path} query={case.query} headers={_shown(case.headers)} "
                f"body={_shown(case.body)} -> {response.status_code} {response.text[:200]}")


def _error_problem(response, documented: set[int]) -> str | None:
    """What is wrong with an answer by docs/api.md's rules, or None."""
    status = response.status_code
    if status >= 500 and status not in documented:
        return f"an undocumented {status}"
    if status not in documented:
        return f"status {status} is not in the description"
    if status >= 400:
        try:
            body = json.loads(response.content)
        except ValueError:
            return "an error that is not JSON"
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return "an error without a 'message'"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."


@pytest.mark.parametrize("name", NODES)
def test_schemathesis_finds_no_5xx_and_only_documented_errors(cluster, http, name):
    started = time.monotonic()
    document = description(cluster, name, http)
    fuzz = Fuzz(document, cluster.node(name).address, cluster.secret, http)
    fuzz.run()
    print(f"\n{name}: {fuzz.cases} cases, each sent with no secret and with it, in "
          f"{time.monotonic() - started:.1f} s, statuses {dict(sorted(fuzz.statuses.items()))}, "
          f"{len(fuzz.failures)} failures")
    assert not fuzz.failures, "\n".join(fuzz.failures[:20])


def _copy(**changes: Any) -> dict[str, Any]:
    """A ``/rep/update`` body that is whole but for ``changes``."""
    return {"title": "T", "topic": "t", "price": 1, "quantity": 1, "seq": 0, "token": "contract", **changes}


#: Inputs that the description's types led to and that got a 500 (or were taken with a wrong
#: type) before they were fixed; each must now be refused plainly: (node, method, path, headers,
#: body, status).
REFUSED = [
    pytest.param("catalog0", "POST", "/rep/ping", {}, {"from": 1, "seqs": {"²": 1}}, 400, id="ping-unicode-digit"),
    pytest.param("catalog0", "POST", "/rep/ping", {}, {"from": 1, "seqs": {"9" * 5000: 1}}, 400, id="ping-long-id"),
    pytest.param("catalog0", "GET", "/rep/buys/1", {"X-Bazar-Generation": "9" * 5000}, None, 400,
                 id="generation-5000-digits"),
    pytest.param("catalog0", "GET", "/rep/buys/1", {"X-Bazar-Generation": str(2**64)}, None, 400,
                 id="generation-over-64-bits"),
    pytest.param("frontend", "DELETE", "/invalidate/item/1?seq=" + "9" * 5000, {}, None, 422, id="seq-5000-digits"),
    pytest.param("catalog0", "POST", "/rep/update/1", {}, _copy(seq=2**70), 400, id="copy-seq-2**70"),
    pytest.param("catalog0", "POST", "/rep/update/1", {}, _copy(quantity=2**70), 400, id="copy-quantity-2**70"),
    pytest.param("catalog0", "POST", "/rep/update/1", {}, _copy(quantity="7"), 400, id="copy-quantity-text"),
    pytest.param("catalog0", "POST", "/rep/update/1", {}, _copy(seq=1.5), 400, id="copy-seq-fraction"),
    pytest.param("catalog0", "POST", "/rep/update/1", {}, _copy(confirmed="yes"), 400, id="update-confirmed-text"),
    pytest.param("frontend", "PUT", "/buy/1", {"X-Bazar-Buy-Id": "\xe9\xff"}, None, 400, id="frontend-buy-id-latin1"),
    pytest.param("order0", "PUT", "/buy/1", {"X-Bazar-Buy-Id": "\xe9\xff"}, None, 400, id="order-buy-id-latin1"),
]


@pytest.mark.parametrize(("name", "method", "path", "headers", "body", "status"), REFUSED)
def test_inputs_that_got_a_500_are_refused_plainly(cluster, http, name, method, path, headers, body, status):
    before = http.get(cluster.node("catalog0").address + "/admin/state", headers={SECRET_HEADER: cluster.secret},
                      timeout=10).json()["books"]
    answer = http.request(method, cluster.node(name).address + path, json=body, timeout=15,
                          headers={SECRET_HEADER: cluster.secret, **headers})
    assert answer.status_code == status, answer.text[:300]
    assert isinstance(answer.json()["message"], str)
    after = http.get(cluster.node("catalog0").address + "/admin/state", headers={SECRET_HEADER: cluster.secret},
                     timeout=10).json()["books"]
    assert after == before  # refused: nothing changed


@pytest.mark.parametrize("header", ["X-Bazar-Trace", "X-Bazar-Span"])
def test_a_trace_or_span_id_that_is_not_plain_text_is_replaced_and_the_request_served(cluster, http, header):
    for path in ("/lookup/6", "/search/graduate", "/search/nothing-has-this"):
        answer = http.get(cluster.frontend.address + path, headers={header: "\xe9\xff"}, timeout=15)
        assert answer.status_code == 200, answer.text[:300]
        trace = answer.headers["X-Bazar-Trace"]
        assert trace and trace.isascii() and trace.isprintable()
