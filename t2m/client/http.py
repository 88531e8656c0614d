"""A small synchronous HTTP client for the T2M API (``http.client``, no dependencies).

It adds the saved bearer token, refreshes it with the saved refresh token when
it is about to expire (or the server says it has), turns error envelopes into
:class:`ApiError`, and lets callers stream request bodies and response bodies.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from t2m.client import config
from t2m.client.errors import ApiError, CliError

USER_AGENT = "t2m-cli/0.1"
CHUNK = 256 * 1024


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    raw: http.client.HTTPResponse
    connection: http.client.HTTPConnection = field(repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self) -> bytes:
        try:
            return self.raw.read()
        finally:
            self.close()

    def json(self) -> Any:
        body = self.read()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise CliError(f"the server answered HTTP {self.status} with no JSON body") from exc

    def data(self) -> Any:
        """The ``data`` of a success envelope."""
        return self.json().get("data")

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        try:
            while chunk := self.raw.read1(size):
                yield chunk
        finally:
            self.close()

    def lines(self) -> Iterator[str]:
        try:
            while raw := self.raw.readline():
                yield raw.decode("utf-8", "replace")
        finally:
            self.close()

    def close(self) -> None:
        self.raw.close()
        self.connection.close()


def error_from(response: Response) -> ApiError:
    body = response.read()
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    message = error.get("message") or (response.raw.reason or "request failed")
    return ApiError(response.status, error.get("code") or "HTTP_ERROR", message)


class Api:
    def __init__(self, server: str, *, timeout_s: float = 60) -> None:
        self.server = config.normalise_server(server)
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"not a server URL: {server}", 2)
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._base_path = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.login = config.load_login(self.server)

    def url(self, path: str) -> str:
        return self.server + path

    def _connection(self, timeout_s: float | None) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._netloc, timeout=timeout_s)
        return http.client.HTTPConnection(self._netloc, timeout=timeout_s)

    def send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        timeout_s: float | None = -1,
        ok: tuple[int, ...] = (200, 201, 202, 204, 206),
    ) -> Response:
        """One request; raises ApiError on a status outside ``ok``.  A body
        given as an iterable is sent once (no retry after a token refresh, so
        a caller streaming a file must have a fresh token first)."""
        all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        if auth:
            all_headers["Authorization"] = f"Bearer {self.access_token()}"
        target = self._base_path + path + (f"?{urlencode(query, doseq=True)}" if query else "")
        response = self._exchange(method, target, body, all_headers, timeout_s)
        replayable = body is None or isinstance(body, bytes)
        if response.status == 401 and auth and replayable and self.login is not None:
            error = error_from(response)
            if error.code != "AUTH_EXPIRED":
                raise self._unauthorised(error)
            self.refresh()
            all_headers["Authorization"] = f"Bearer {self.access_token()}"
            response = self._exchange(method, target, body, all_headers, timeout_s)
        if response.status not in ok:
            error = error_from(response)
            raise self._unauthorised(error) if response.status == 401 else error
        return response

    def _unauthorised(self, error: ApiError) -> ApiError:
        if self.login is None:
            return error
        error.message += f"; run 't2m login --server {self.server}'"
        error.args = (error.message,)
        return error

    def _exchange(
        self,
        method: str,
        target: str,
        body: bytes | Iterable[bytes] | None,
        headers: dict[str, str],
        timeout_s: float | None,
    ) -> Response:
        connection = self._connection(self.timeout_s if timeout_s == -1 else timeout_s)
        try:
            # The server may answer early (a refused upload) and close: its
            # answer is then a better reason than the broken pipe.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request(method, target, body=body, headers=headers)
            raw = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise CliError(f"cannot reach {self.server}: {_reason(exc)}") from exc
        return Response(raw.status, raw.headers, raw, connection)

    # -- tokens ---------------------------------------------------------------

    def access_token(self) -> str:
        if self.login is None:
            raise CliError(
                f"not signed in to {self.server}; run 't2m login --server {self.server}'"
            )
        if self.login.expiring():
            self.refresh()
        return self.login.access_token

    def refresh(self) -> None:
        """Trade the saved refresh token for a new pair (refresh tokens work
        once), and save it at once so the next command has it."""
        assert self.login is not None
        response = self.send(
            "POST",
            "/api/v1/auth/refresh",
            json_body={"refresh_token": self.login.refresh_token},
            auth=False,
            ok=(200,),
        )
        self.login = self._save(self.login.username, response.data())

    def sign_in(self, username: str, password: str) -> config.Login:
        response = self.send(
            "POST",
            "/api/v1/auth/login",
            json_body={"username": username, "password": password},
            auth=False,
            ok=(200,),
        )
        data = response.data()
        self.login = self._save(str(data.get("user", {}).get("username") or username), data)
        return self.login

    def _save(self, username: str, pair: dict[str, Any]) -> config.Login:
        login = config.Login(
            username=username,
            access_token=str(pair["access_token"]),
            refresh_token=str(pair["refresh_token"]),
            expires_at=time.time() + float(pair.get("expires_in") or 0),
        )
        config.save_login(self.server, login)
        return login

    # -- conveniences ---------------------------------------------------------

    def get_data(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.send("GET", path, query=query).data()

    def post_data(self, path: str, json_body: Any = None) -> Any:
        return self.send("POST", path, json_body=json_body if json_body is not None else {}).data()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
