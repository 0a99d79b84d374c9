"""The OpenAPI schema fuzzed with schemathesis, in-process and bounded: no 500, and every
response conforms to the documented status codes, content types and schemas. (Images of every
shape through the real service: tests/test_serve_server.py; the decoder: test_decode_fuzz.py.)"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.slow  # not in the quick tier (make test-quick)

KEY = "fuzz-key-0123"


# -- schemathesis: every operation, bounded examples ------------------------------------------

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)
from schemathesis.checks import not_a_server_error  # noqa: E402


def _fuzz_app():
    from serve.app import create_app
    from serve.settings import Settings

    return create_app(Settings(api_keys=KEY, max_concurrency=1, max_queue=4, mode="fast"))


APP = _fuzz_app()  # cheap: nothing loads until start-up
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # calls go to the app in-process (ASGI); the first one runs its start-up


@pytest.fixture(scope="module", autouse=True)
def loaded_models():
    """Load the models before the first example (start-up then finds them loaded)."""
    from serve.auth import load_key_ring

    APP.state.key_ring = load_key_ring(APP.state.engine.settings)
    APP.state.engine.load()
    APP.state.engine.gate.open()
    if not APP.state.engine.ready:
        pytest.fail(f"the fuzzed app could not load its models: {APP.state.engine.load_error}")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case):
    case.call_and_validate(
        headers={"x-api-key": KEY},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance],
    )
