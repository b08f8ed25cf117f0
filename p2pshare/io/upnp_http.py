"""HTTP for UPnP IGD with a bound on every answer, checked while it is read.

A gateway's description or SOAP reply larger than ``max_body`` bytes is refused as soon
as that many bytes have arrived (or at once, when Content-Length says so): a hostile or
broken device on the LAN can never make us buffer more.  Errors map onto the
``async-upnp-client`` exceptions its callers expect.
"""

from __future__ import annotations

import aiohttp
from async_upnp_client.client import UpnpRequester
from async_upnp_client.const import HttpRequest, HttpResponse
from async_upnp_client.exceptions import (
    UpnpCommunicationError,
    UpnpConnectionError,
    UpnpConnectionTimeoutError,
    UpnpError,
)

__all__ = ["BoundedRequester", "UpnpAnswerTooLarge"]

CHUNK = 16 * 1024


class UpnpAnswerTooLarge(UpnpError):
    """A gateway's answer exceeded the configured limit."""


class BoundedRequester(UpnpRequester):
    """An aiohttp requester that stops reading an answer at ``max_body`` bytes."""

    def __init__(self, timeout: float, max_body: int) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_body = max_body

    async def async_http_request(self, http_request: HttpRequest) -> HttpResponse:
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.request(
                    http_request.method,
                    http_request.url,
                    headers=dict(http_request.headers or {}),
                    data=http_request.body,
                ) as response,
            ):
                declared = response.content_length
                if declared is not None and declared > self._max_body:
                    raise UpnpAnswerTooLarge(f"UPnP answer of {declared} bytes exceeds {self._max_body}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) > self._max_body:
                        raise UpnpAnswerTooLarge(f"UPnP answer exceeds {self._max_body} bytes")
                text = bytes(body).decode(response.charset or "utf-8")
                return HttpResponse(response.status, dict(response.headers), text)
        except TimeoutError as exc:
            raise UpnpConnectionTimeoutError(repr(exc)) from exc
        except aiohttp.ClientConnectionError as exc:
            raise UpnpConnectionError(repr(exc)) from exc
        except (aiohttp.ClientError, UnicodeDecodeError, LookupError) as exc:
            raise UpnpCommunicationError(repr(exc)) from exc
