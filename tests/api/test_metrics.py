"""GET /metrics through the real daemon: the text parses with prometheus_client's own parser,
the families exist and move, the label sets stay bounded, and who may scrape.

A ``file:`` camera plays a clip of a real photograph for the camera and tracking families;
the speaker plays into a ``wav:`` sink. Nothing of faced is faked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from faced.vision.synthetic import Motion, write_clip
from tests import data
from tests.helpers import until
from tests.speaker_helpers import audio_config, make_wav, noise, post_chunk, wait_quiet

KEY = "metrics-key"
LAN = {"X-Forwarded-For": "192.0.2.7"}
PROXY = {"trusted_proxies": ["127.0.0.1/32"]}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(client: Any, **headers: str) -> tuple[set[str], Samples]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return names, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_counted_by_route_template_and_bounded(faced_client: Any) -> None:
    client = await faced_client()
    for _ in range(3):
        assert (await client.get("/health")).status == 200
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200
    # The same route again (its series found by handler) and with another status; HEAD
    # shares GET's handler and keeps its own label.
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200
    assert (await client.post("/api/state", json={"state": "no-such-state"})).status == 400
    assert (await client.head("/health")).status == 200
    assert (await client.get("/no/such/page-4711")).status == 404
    assert (await client.get("/static/no-such-file-4711.js")).status == 404
    assert (await client.request("PROPFIND", "/coffee-4711")).status in (404, 405)
    names, samples = await _scrape(client)

    for family in (
        "faced_http_requests",
        "faced_http_request_duration_seconds",
        "faced_viewers",
        "faced_agents",
        "faced_tracking_clients",
        "process_resident_memory_bytes",
        "process_cpu_seconds",
        "process_open_fds",
        "python_info",
    ):
        assert family in names, family
    assert (
        _value(samples, "faced_http_requests_total", method="GET", route="/health", status="200")
        == 3
    )
    assert (
        _value(
            samples, "faced_http_requests_total", method="POST", route="/api/state", status="200"
        )
        == 2
    )
    assert (
        _value(
            samples, "faced_http_requests_total", method="POST", route="/api/state", status="400"
        )
        == 1
    )
    assert (
        _value(samples, "faced_http_requests_total", method="HEAD", route="/health", status="200")
        == 1
    )
    # The duration histogram counts the same requests.
    assert (
        _value(
            samples,
            "faced_http_request_duration_seconds_count",
            method="GET",
            route="/health",
            status="200",
        )
        == 3
    )
    assert (
        _value(
            samples,
            "faced_http_request_duration_seconds_bucket",
            method="GET",
            route="/health",
            status="200",
            le="+Inf",
        )
        == 3
    )
    # Raw paths never become labels: the router's 404 is "unmatched", a route's its template.
    assert (
        _value(samples, "faced_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        _value(
            samples, "faced_http_requests_total", method="GET", route="/static/{name}", status="404"
        )
        == 1
    )
    unknown_method = [
        labels
        for name, labels in samples
        if name == "faced_http_requests_total" and ("method", "OTHER") in labels
    ]
    assert unknown_method, "a method outside the fixed list is counted as OTHER"
    text = await (await client.get("/metrics")).text()
    assert "4711" not in text and "PROPFIND" not in text


async def test_openmetrics_by_accept(faced_client: Any) -> None:
    client = await faced_client()
    accept = "application/openmetrics-text; version=1.0.0"
    response = await client.get("/metrics", headers={"Accept": accept})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name for family in openmetrics_families(await response.text())}
    assert "faced_http_requests" in families


async def test_access_with_a_key(faced_client: Any) -> None:
    client = await faced_client(auth={"api_key": KEY})
    response = await client.get("/metrics")
    assert response.status == 401
    assert "API key required" in (await response.json())["error"]
    assert (await client.get("/metrics", headers={"X-API-Key": "wrong"})).status == 403
    await _scrape(client, Authorization=f"Bearer {KEY}")


async def test_no_key_serves_loopback_only(faced_client: Any) -> None:
    client = await faced_client(server=PROXY)
    response = await client.get("/metrics", headers=LAN)
    assert response.status == 403
    assert "auth.api_key" in (await response.json())["error"]
    await _scrape(client)  # loopback


async def test_public_opens_it_to_the_lan(faced_client: Any) -> None:
    client = await faced_client(auth={"api_key": KEY}, server=PROXY, metrics={"public": True})
    await _scrape(client, **LAN)  # no key, not loopback
    # Only /metrics: the rest keeps its class.
    assert (await client.get("/api/person", headers=LAN)).status == 401
    spec = await (await client.get("/openapi.json")).json()
    assert "security" not in spec["paths"]["/metrics"]["get"] or spec["paths"]["/metrics"]["get"][
        "security"
    ] in ([], [{}])


async def test_disabled_has_no_route(faced_client: Any) -> None:
    client = await faced_client(metrics={"enabled": False})
    assert (await client.get("/metrics")).status == 404
    assert "metrics" not in (await (await client.get("/health")).json())["components"]


async def test_health_reports_the_component(faced_client: Any) -> None:
    client = await faced_client()
    await client.get("/metrics")
    report = (await (await client.get("/health")).json())["components"]["metrics"]
    assert report["status"] == "ok" and report["public"] is False and report["scrapes"] == 1


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photograph looking into the camera, as a clip the file camera loops."""
    still = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)
    path = tmp_path_factory.mktemp("metrics-clip") / "still.avi"
    return write_clip(data.load_rgb("tongue.jpg"), path, 30, motion=still)


@pytest.mark.slow
async def test_camera_tracking_and_presence_move(faced_client: Any, still_clip: Path) -> None:
    client = await faced_client(camera={"source": f"file:{still_clip}"})
    seen: dict[str, Samples] = {}

    async def tracked() -> bool:
        _, seen["samples"] = await _scrape(client)
        samples = seen["samples"]
        return (
            _value(samples, "faced_tracking_latency_seconds_count") >= 10
            and _value(samples, "faced_presence") == 1
        )

    await until(tracked, 60, what="tracking results and presence in /metrics")
    samples = seen["samples"]
    assert _value(samples, "faced_camera_frames_captured_total") >= 10
    assert _value(samples, "faced_camera_frames_processed_total") >= 10
    assert ("faced_camera_frames_dropped_total", frozenset()) in samples
    assert ("faced_camera_reopens_total", frozenset()) in samples
    assert _value(samples, "faced_tracking_results_total") >= 10
    assert _value(samples, "faced_tracking_fps") > 0
    counts = {
        stage: _value(samples, "faced_pipeline_stage_seconds_count", stage=stage)
        for stage in ("detect", "landmarks", "blendshapes", "total")
    }
    assert counts["total"] >= 10 and counts["landmarks"] >= 10, counts
    # A stage that did not run adds no sample: the detector ran on the first frames only
    # (then tracking), the blendshape model on none (nobody asked for the scores).
    assert 1 <= counts["detect"] < counts["total"], counts
    assert counts["blendshapes"] == 0, counts
    assert _value(samples, "faced_people") >= 1
    assert ("faced_attention", frozenset()) in samples
    assert ("faced_speaking", frozenset()) in samples


@pytest.mark.slow
async def test_analyze_is_counted_and_timed(faced_client: Any) -> None:
    import aiohttp  # noqa: PLC0415

    client = await faced_client()
    photo = await asyncio.to_thread(lambda: data.path("tongue.jpg").read_bytes())
    form = aiohttp.FormData()
    form.add_field("image", photo, filename="photo", content_type="application/octet-stream")
    assert (await client.post("/v1/analyze", data=form)).status == 200
    _, samples = await _scrape(client)
    assert _value(samples, "faced_analyze_jobs_total") == 1
    assert _value(samples, "faced_analyze_job_seconds_count") == 1
    assert _value(samples, "faced_analyze_pending") == 0
    assert (
        _value(
            samples,
            "faced_http_request_duration_seconds_count",
            method="POST",
            route="/v1/analyze",
            status="200",
        )
        == 1
    )


async def test_speaker_families(faced_client: Any, tmp_path: Path) -> None:
    client = await faced_client(**audio_config(tmp_path / "out.wav"))
    await client.post("/api/speak", json={"emotion": "happy"})
    response = await post_chunk(client, make_wav(noise(0.2, 16000), 16000))
    assert response.status == 200, await response.text()
    # No audio-done: the queue runs dry mid-sequence, which is an underrun.
    await wait_quiet(client, played_s=0.2)
    _, samples = await _scrape(client)
    assert _value(samples, "faced_speaker_played_seconds_total") > 0.19
    assert _value(samples, "faced_speaker_underruns_total") >= 1
    assert _value(samples, "faced_speaker_queued_seconds") == 0
    assert _value(samples, "faced_speaker_up") == 1


async def test_display_families(faced_client: Any) -> None:
    client = await faced_client()  # display.driver none: the policy runs, no hardware
    _, samples = await _scrape(client)
    assert _value(samples, "faced_display_level", level="on") == 1
    assert _value(samples, "faced_display_level", level="dim") == 0
    assert _value(samples, "faced_display_level", level="off") == 0
    assert _value(samples, "faced_display_power") == 1
    assert _value(samples, "faced_display_brightness") == 100
