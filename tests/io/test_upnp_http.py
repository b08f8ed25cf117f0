"""The UPnP HTTP requester refuses an oversized answer while reading it, and passes normal ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from async_upnp_client.const import HttpRequest
from async_upnp_client.exceptions import UpnpConnectionError

from p2pshare.io.upnp_http import BoundedRequester, UpnpAnswerTooLarge

LIMIT = 64 * 1024
sent: list[int] = []


async def small(_: web.Request) -> web.Response:
    return web.Response(text="<root>ok</root>", content_type="text/xml")


async def declared_huge(_: web.Request) -> web.Response:
    return web.Response(body=b"x" * (LIMIT + 1), content_type="text/xml")


async def endless(request: web.Request) -> web.StreamResponse:
    """A chunked answer with no Content-Length that would go on for 64 MiB."""
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        for _ in range(4096):
            await response.write(b"y" * 16384)
            sent[0] += 16384
    except (ConnectionResetError, RuntimeError):
        pass
    return response


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    sent[:] = [0]
    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/huge", declared_huge)
    app.router.add_get("/endless", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_an_answer_within_the_limit_is_returned_whole(base_url: str) -> None:
    """A small description comes back with its status and text."""
    response = await BoundedRequester(5.0, LIMIT).async_http_request(
        HttpRequest("GET", f"{base_url}/small", {}, None)
    )
    assert response.status_code == 200 and response.body == "<root>ok</root>"


async def test_a_declared_length_over_the_limit_is_refused_before_reading(base_url: str) -> None:
    """Content-Length one byte over the limit is refused."""
    with pytest.raises(UpnpAnswerTooLarge):
        await BoundedRequester(5.0, LIMIT).async_http_request(
            HttpRequest("GET", f"{base_url}/huge", {}, None)
        )


async def test_a_chunked_answer_is_cut_once_it_passes_the_limit(base_url: str) -> None:
    """An endless chunked answer is refused after about the limit, far short of what the server offers."""
    with pytest.raises(UpnpAnswerTooLarge):
        await BoundedRequester(5.0, LIMIT).async_http_request(
            HttpRequest("GET", f"{base_url}/endless", {}, None)
        )
    assert sent[0] < 4096 * 16384


async def test_a_closed_port_is_a_connection_error() -> None:
    """Nobody listening is UpnpConnectionError, as async-upnp-client's own requester says."""
    with pytest.raises(UpnpConnectionError):
        await BoundedRequester(2.0, LIMIT).async_http_request(
            HttpRequest("GET", "http://127.0.0.1:9/x", {}, None)
        )
