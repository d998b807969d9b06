"""Who may do what at the edge: credentials, owners, origins, rate limits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.config import EdgeConfig
from tests.edge_harness import Stack, StackFactory, frames_until, run_ended

KEYS = {"key-alice": "alice", "key-bob": "bob"}
SECRET = "s" * 32
ALICE = {"Authorization": "Bearer key-alice"}
BOB = {"Authorization": "Bearer key-bob"}


def hs256(sub: str, **claims: object) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 60, **claims}, SECRET, "HS256")


def test_an_edge_without_credentials_refuses_to_start() -> None:
    with pytest.raises(ValueError, match=r"--api-key .* --jwt-secret .* --no-auth"):
        EdgeConfig(agent="127.0.0.1:1").check()
    with pytest.raises(ValueError, match="--jwks-file"):
        EdgeConfig(jwks_file="/nope.json").check()
    with pytest.raises(ValueError, match="exact origin"):
        EdgeConfig(no_auth=True, allowed_origins=("app.example",)).check()
    with pytest.raises(ValueError, match="--trusted-proxy 'nginx' is not an IP address"):
        EdgeConfig(no_auth=True, trusted_proxies=("nginx",)).check()


async def test_rest_needs_a_valid_bearer_token(start_stack: StackFactory) -> None:
    settings = {"no_auth": False, "api_keys": KEYS, "jwt_secret": SECRET}
    async with start_stack(**settings) as stack, stack.http() as http:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic x"},
            {"Authorization": f"Bearer {hs256('eve', exp=1)}"},
        ):
            refused = await http.get("/v1/threads", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert (await http.get("/v1/threads", headers=ALICE)).status_code == 200
        token = {"Authorization": f"Bearer {hs256('carol')}"}
        assert (await http.get("/v1/threads", headers=token)).status_code == 200
        cookie = await http.get("/v1/threads", headers={"Cookie": "glassbox_token=key-bob"})
        assert cookie.status_code == 200


async def test_a_jwks_file_verifies_rs256_tokens(start_stack: StackFactory, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256"}]}))
    token = jwt.encode(
        {"sub": "dave", "exp": int(time.time()) + 60}, key, "RS256", headers={"kid": "k1"}
    )
    async with start_stack(no_auth=False, jwks_file=str(jwks)) as stack, stack.http() as http:
        ok = await http.get("/v1/threads", headers={"Authorization": f"Bearer {token}"})
        forged = await http.get("/v1/threads", headers={"Authorization": f"Bearer {hs256('x')}"})
    assert ok.status_code == 200
    assert forged.status_code == 401


async def test_another_principal_sees_404_for_every_thread_operation(
    start_stack: StackFactory,
) -> None:
    async with start_stack(no_auth=False, api_keys=KEYS) as stack, stack.http() as http:
        started = await http.post(
            "/v1/threads/alices/runs", json={"graph": "interrupting"}, headers=ALICE
        )
        assert started.status_code == 202
        run = started.headers["location"]
        attempts = [
            http.get("/v1/threads/alices", headers=BOB),
            http.get("/v1/threads/alices/state", headers=BOB),
            http.get("/v1/threads/alices/history", headers=BOB),
            http.get("/v1/threads/alices/runs", headers=BOB),
            http.get(run, headers=BOB),
            http.post(run + "/cancel", headers=BOB),
            http.get(run + "/stream", headers=BOB),
            http.post("/v1/threads/alices/runs", json={"value": "x"}, headers=BOB),
            http.post("/v1/threads/alices/runs/stream", json={"value": "x"}, headers=BOB),
            http.delete("/v1/threads/alices", headers=BOB),
        ]
        for attempt in attempts:
            response = await attempt
            assert response.status_code == 404, response.request.url
        listed = (await http.get("/v1/threads", headers=BOB)).json()["threads"]
        assert listed == []
        assert (await http.get("/v1/threads/alices", headers=ALICE)).status_code == 200


async def test_websocket_tokens_travel_in_the_subprotocol_cookie_or_first_frame(
    start_stack: StackFactory,
) -> None:
    async with start_stack(no_auth=False, api_keys=KEYS) as stack:
        async with stack.ws(subprotocols=["glassbox.v1", "bearer.key-alice"]) as ws:
            assert ws.subprotocol == "glassbox.v1"
            assert json.loads(await ws.recv())["principal"] == "alice"
        async with stack.ws(additional_headers={"Cookie": "glassbox_token=key-bob"}) as ws:
            assert json.loads(await ws.recv())["principal"] == "bob"
        async with stack.ws() as ws:
            await ws.send(json.dumps({"op": "auth", "token": "key-alice"}))
            assert json.loads(await ws.recv())["principal"] == "alice"
        async with stack.ws() as ws:
            await ws.send(json.dumps({"op": "auth", "token": "wrong"}))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
        async with stack.ws() as ws:
            await ws.send(json.dumps({"op": "run", "graph": "echo"}))  # no auth first
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401


async def test_a_socket_cannot_join_or_cancel_another_principals_run(
    start_stack: StackFactory,
) -> None:
    async with start_stack(no_auth=False, api_keys=KEYS) as stack:
        async with stack.ws(subprotocols=["glassbox.v1", "bearer.key-alice"]) as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "run", "graph": "echo", "input": {"text": "a"}}))
            frames = await frames_until(ws, run_ended)
        run_id = frames[0]["run_id"]
        async with stack.ws(subprotocols=["glassbox.v1", "bearer.key-bob"]) as ws:
            await ws.recv()
            for op in ("join", "cancel"):
                await ws.send(json.dumps({"op": op, "id": op, "run_id": run_id}))
                error = json.loads(await ws.recv())
                assert error["type"] == "error"
                assert error["error"]["code"] == "RUN_NOT_FOUND"


async def test_ops_beyond_the_rate_limit_are_refused(start_stack: StackFactory) -> None:
    async with start_stack(rate_ops_per_s=1, rate_burst=3) as stack, stack.http() as http:
        codes = [(await http.get("/v1/graphs")).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        assert codes[3:] == [429, 429]
        limited = await http.get("/v1/graphs")
        assert limited.headers["retry-after"]
        assert limited.json()["error"]["code"] == "RATE_LIMITED"


async def test_connections_beyond_the_limit_are_closed_with_4429(
    start_stack: StackFactory,
) -> None:
    async with start_stack(max_connections_per_ip=2) as stack:
        async with stack.ws() as first, stack.ws() as second:
            await first.recv()
            await second.recv()
            async with stack.ws() as third:
                with pytest.raises(ConnectionClosed) as closed:
                    await third.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4429
        async with stack.ws() as again:  # slots are given back on close
            assert json.loads(await again.recv())["type"] == "welcome"


async def test_a_token_in_the_url_is_refused_everywhere(start_stack: StackFactory) -> None:
    async with start_stack(no_auth=False, api_keys=KEYS) as stack:
        async with stack.http() as http:
            response = await http.get("/v1/threads?token=key-alice", headers=ALICE)
            assert response.status_code == 401
            assert "never put the token in the URL" in response.json()["error"]["message"]
        for path in ("/v1/ws?access_token=key-alice", "/chat-ws?session_id=s&token=key-alice"):
            async with stack.ws(path, subprotocols=["glassbox.v1", "bearer.key-alice"]) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4401


# -- behind a proxy: what the browser asked for, believed only from trusted proxies -------

TLS_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}
RFC_7239 = {"Forwarded": 'for=198.51.100.7;proto=https;host="app.example"'}


async def origin_admitted(stack: Stack, origin: str, headers: dict[str, str]) -> tuple[bool, bool]:
    """Whether a WebSocket handshake and a REST call from `origin` get through."""
    status = 101
    try:
        async with stack.ws(origin=origin, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
    except InvalidStatus as refused:
        status = refused.response.status_code
    assert status in (101, 403)
    socket = status == 101
    async with stack.http() as http:
        answer = await http.get("/v1/graphs", headers={"Origin": origin, **headers})
    assert answer.status_code in (200, 403), answer.text
    return socket, answer.status_code == 200


async def test_a_trusted_proxys_forwarded_host_and_scheme_make_the_origin(
    start_stack: StackFactory,
) -> None:
    # The tests reach the edge from 127.0.0.1, a trusted proxy by default.
    async with start_stack() as stack:
        for headers in (TLS_PROXY, RFC_7239):
            assert await origin_admitted(stack, "https://app.example", headers) == (True, True)
            # Same host, other scheme or port: another origin.
            assert await origin_admitted(stack, "http://app.example", headers) == (False, False)
            assert await origin_admitted(stack, "https://app.example:8443", headers) == (
                False,
                False,
            )
        assert await origin_admitted(stack, "https://app.example:443", TLS_PROXY) == (True, True)
        # Without forwarded headers the edge is what it is: http on its own host and port.
        assert await origin_admitted(stack, stack.url, {}) == (True, True)
        assert await origin_admitted(stack, "https://app.example", {}) == (False, False)


async def test_forwarded_headers_from_anyone_else_are_ignored(start_stack: StackFactory) -> None:
    async with start_stack(trusted_proxies=("10.0.0.0/8",)) as stack:
        for headers in (TLS_PROXY, RFC_7239):
            assert await origin_admitted(stack, "https://app.example", headers) == (False, False)
            # Its own origin still passes: the headers are ignored, not held against it.
            assert await origin_admitted(stack, stack.url, headers) == (True, True)
        async with stack.http() as http:
            refused = await http.get(
                "/v1/graphs", headers={"Origin": "https://app.example", **TLS_PROXY}
            )
        message = refused.json()["error"]["message"]
        assert f"reached as '{stack.url}'" in message
        assert "--trusted-proxy" in message


async def test_limits_per_ip_count_the_browser_behind_a_trusted_proxy(
    start_stack: StackFactory,
) -> None:
    """Everyone behind one proxy is not one IP, and a client cannot pick its own IP by
    prepending to X-Forwarded-For: the first untrusted address from the right counts."""
    async with start_stack(
        max_connections_per_ip=1, trusted_proxies=("127.0.0.1", "10.0.0.0/8")
    ) as stack:

        def via_proxy(chain: str) -> connect:
            return stack.ws(additional_headers={"X-Forwarded-For": chain})

        async with via_proxy("203.0.113.1") as one, via_proxy("1.1.1.1, 203.0.113.2") as two:
            assert json.loads(await one.recv())["type"] == "welcome"
            assert json.loads(await two.recv())["type"] == "welcome"
            async with via_proxy("9.9.9.9, 203.0.113.1, 10.0.0.5") as again:
                with pytest.raises(ConnectionClosed) as closed:
                    await again.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4429
            assert "203.0.113.1" in closed.value.rcvd.reason
