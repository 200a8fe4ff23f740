"""The internal API's contract: auth, every error case, health and metrics."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fixtures.app import API_TOKEN, ApiClient
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.app import Application


def error_code(body: object) -> str:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


async def test_every_route_but_health_needs_the_token(app: Application) -> None:
    assert app.api is not None
    base = f"http://127.0.0.1:{app.api.port}"
    for token in (None, "wrong-token"):
        client = ApiClient(base, token=token)
        try:
            for method, path in [
                ("POST", "/ai/generate"),
                ("GET", "/ai/jobs/llm-x"),
                ("GET", "/metrics"),
                ("GET", "/metrics/prometheus"),
            ]:
                status, body = await client.request(method, path, json={})
                assert status == 401, (method, path)
                assert error_code(body) == "unauthorized"
            status, _ = await client.request("GET", "/health")
            assert status == 200
        finally:
            await client.close()


@pytest.mark.parametrize(
    ("raw", "expected_status", "expected_code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2, 3]", 400, "invalid_json"),
        (b"\xff\xfe garbage", 400, "invalid_json"),
        (b'{"message": "hi", "userId": "u"}', 400, "invalid_request"),
        (b'{"personality": "Lilith", "message": 5, "userId": "u"}', 400, "invalid_request"),
        (b'{"personality": "Lilith", "message": "hi", "userId": 12}', 400, "invalid_request"),
        (b'{"personality": "Lilith", "message": "", "userId": "u"}', 400, "invalid_request"),
        (
            b'{"personality": "Lilith", "message": "hi", "userId": "u", "requestId": "a b"}',
            400,
            "invalid_request",
        ),
        (b'{"personality": "Nobody", "message": "hi", "userId": "u"}', 404, "unknown_personality"),
    ],
)
async def test_bad_generate_requests_get_clear_4xx(
    api: ApiClient, fake_llm: FakeLLM, raw: bytes, expected_status: int, expected_code: str
) -> None:
    status, body = await api.request(
        "POST", "/ai/generate", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == expected_status
    assert error_code(body) == expected_code
    assert fake_llm.chat_calls == []


async def test_oversized_message_and_body_are_413(api: ApiClient) -> None:
    status, body = await api.generate(message="x" * 16_001)
    assert status == 413
    assert error_code(body) == "message_too_long"

    status, body = await api.request(
        "POST",
        "/ai/generate",
        data=b'{"a": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    assert error_code(body) == "payload_too_large"


async def test_personality_is_found_by_alias_and_slug_case_insensitively(
    api: ApiClient,
) -> None:
    for ref in ("lil", "LILITH", "lilith"):
        status, body = await api.generate(personality=ref)
        assert status == 202, body


async def test_bad_wait_and_unknown_job(api: ApiClient) -> None:
    status, body = await api.generate(wait="soon")  # type: ignore[arg-type]
    assert status == 400 and error_code(body) == "invalid_wait"
    status, body = await api.generate(wait=-1)
    assert status == 400 and error_code(body) == "invalid_wait"
    status, body = await api.request("GET", "/ai/jobs/llm-does-not-exist")
    assert status == 404 and error_code(body) == "unknown_job"


async def test_wait_that_runs_out_answers_202_with_the_job_still_running(
    api: ApiClient, fake_llm: FakeLLM
) -> None:
    fake_llm.latency = 2.0
    status, body = await api.generate(wait=0.3)
    assert status == 202
    assert body["status"] in {"queued", "processing"}
    done = await api.wait_done(body["jobId"])
    assert done["status"] == "completed"


async def test_health_reports_each_part_and_goes_503_without_redis(
    api: ApiClient, redis_server: RedisServer
) -> None:
    status, body = await api.request("GET", "/health")
    assert status == 200
    assert body["status"] == "healthy"
    assert body["services"] == {"redis": True, "queue": True, "worker": True, "api": True}
    assert body["uptime"] >= 0

    redis_server.stop()
    status, body = await api.request("GET", "/health")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["services"]["redis"] is False

    redis_server.start()
    status, body = await api.request("GET", "/health")
    assert status == 200


async def test_metrics_in_json_and_prometheus(api: ApiClient) -> None:
    await api.generate(wait=10)

    status, body = await api.request("GET", "/metrics")
    assert status == 200
    assert set(body["queue"]) == {"waiting", "active", "completed", "failed", "scheduled"}
    assert body["queue"]["completed"] == 1
    assert body["uptime"] > 0

    for path, headers in [("/metrics/prometheus", {}), ("/metrics", {"Accept": "text/plain"})]:
        async with api.session.get(api.base_url + path, headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
        assert 'tzurot_jobs_finished_total{status="completed"} 1.0' in text
        assert "tzurot_job_duration_seconds_bucket" in text
        assert 'tzurot_queue_jobs{state="completed"} 1' in text


async def test_api_refuses_to_start_beyond_loopback_without_a_token() -> None:
    from tzurot.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="API_TOKEN"):
        load_settings(_env_file=None, components="api", api_host="0.0.0.0")


async def test_health_is_open_without_a_token(app: Application) -> None:
    assert app.api is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.api.port}/health") as response,
    ):
        assert response.status == 200
    assert API_TOKEN  # the app was started with one
