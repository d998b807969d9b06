"""Who is calling: API keys or JWTs → a principal, and where a token may travel.

REST and SSE take `Authorization: Bearer …`, `x-api-key: …` (what the LangGraph SDKs
send) or the `glassbox_token` cookie (which a browser's EventSource sends by itself). A
WebSocket takes the token in `Sec-WebSocket-Protocol` (`bearer.<token>` beside
`glassbox.v1`), the cookie, or its first frame — never the query string, which ends up
in access logs.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass

import jwt
from starlette.requests import HTTPConnection

from edge.config import EdgeConfig
from glassbox.errors import PermissionDeniedError, UnauthenticatedError

log = logging.getLogger(__name__)

COOKIE = "glassbox_token"
API_KEY_HEADER = "x-api-key"  # langgraph-sdk and @langchain/langgraph-sdk send the key here
SUBPROTOCOL = "glassbox.v1"
BEARER_SUBPROTOCOL_PREFIX = "bearer."
ANONYMOUS = "anonymous"
ASYMMETRIC = ("RS256", "ES256", "EdDSA")
URL_TOKEN_NAMES = ("token", "access_token", "api_key", "apikey", "jwt", "auth")


@dataclass(frozen=True, slots=True)
class Caller:
    principal: str
    ip: str


class Authenticator:
    def __init__(self, config: EdgeConfig) -> None:
        self.open = config.no_auth
        self._keys = dict(config.api_keys)
        self._secret = config.jwt_secret
        self._audience = config.jwt_audience or None
        self._issuer = config.jwt_issuer or None
        self._jwks: jwt.PyJWKSet | None = None
        if config.jwks_file:
            try:
                with open(config.jwks_file, encoding="utf-8") as f:
                    self._jwks = jwt.PyJWKSet.from_dict(json.load(f))
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise ValueError(
                    f"--jwks-file {config.jwks_file!r} is not a usable JWKS document: {exc}"
                ) from None

    def principal_of(self, token: str) -> str:
        """The principal a token names, or UnauthenticatedError."""
        if not token:
            raise UnauthenticatedError("no credentials: send a bearer token")
        for key, principal in self._keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                return principal
        if token.count(".") == 2 and (self._secret or self._jwks):
            return self._jwt_subject(token)
        raise UnauthenticatedError("the token is not a known API key or a valid JWT")

    def _jwt_subject(self, token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
            # The algorithm decides the key, and each key only its own kind of algorithm:
            # a token must never get an RSA public key verified as an HMAC secret.
            if header.get("alg") == "HS256" and self._secret:
                key: object = self._secret
                algorithms = ["HS256"]
            elif header.get("alg") in ASYMMETRIC and self._jwks is not None:
                key = self._signing_key(header.get("kid"))
                algorithms = list(ASYMMETRIC)
            else:
                raise UnauthenticatedError(f"JWT algorithm {header.get('alg')!r} not accepted")
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the JWT was refused: {exc}") from None
        return str(claims["sub"])

    def _signing_key(self, kid: str | None) -> object:
        assert self._jwks is not None
        for jwk in self._jwks.keys:
            if kid is None or jwk.key_id == kid:
                return jwk.key
        raise UnauthenticatedError(f"no key {kid!r} in the JWKS")

    def http_caller(self, conn: HTTPConnection) -> Caller:
        """The caller of a REST or SSE request."""
        ip = conn.client.host if conn.client else "?"
        refuse_token_in_url(conn)
        if self.open:
            return Caller(ANONYMOUS, ip)
        header = conn.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and scheme.lower() != "bearer":
            raise UnauthenticatedError("use `Authorization: Bearer <token>`")
        token = token.strip() or conn.headers.get(API_KEY_HEADER, "").strip()
        return Caller(self.principal_of(token or conn.cookies.get(COOKIE, "")), ip)

    def websocket_token(self, conn: HTTPConnection) -> str:
        """The token a WebSocket handshake carried ('' when it must come in a frame)."""
        refuse_token_in_url(conn)
        for proto in _subprotocols(conn):
            if proto.startswith(BEARER_SUBPROTOCOL_PREFIX):
                return proto.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
        # Headers a browser cannot set on a WebSocket, but servers' clients do (the
        # LangGraph SDKs send x-api-key on their v2 socket's handshake).
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return conn.headers.get(API_KEY_HEADER, "").strip() or conn.cookies.get(COOKIE, "")


def refuse_token_in_url(conn: HTTPConnection) -> None:
    """URLs end up in access logs, proxies and browser history: a token there is leaked,
    so it is refused outright rather than silently ignored."""
    if any(name in conn.query_params for name in URL_TOKEN_NAMES):
        raise UnauthenticatedError(
            "never put the token in the URL; send it as a bearer header, cookie, "
            "Sec-WebSocket-Protocol entry or first frame"
        )


def _subprotocols(conn: HTTPConnection) -> list[str]:
    header = conn.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def chosen_subprotocol(conn: HTTPConnection) -> str | None:
    """glassbox.v1 when the client offered it (it must then be echoed in the handshake)."""
    return SUBPROTOCOL if SUBPROTOCOL in _subprotocols(conn) else None


def check_origin(conn: HTTPConnection, allowed: tuple[str, ...]) -> None:
    """Exact-match Origin allow-list; with none configured, same-origin only.

    Clients that send no Origin (services, CLIs) are not browsers and pass: a browser
    always sends it on a WebSocket handshake and on cross-origin requests. Same-origin is
    the browser's: scheme, host and port as it reached us (through a trusted proxy, as
    edge.proxy_headers rewrote them).
    """
    origin = conn.headers.get("origin")
    if origin is None:
        return
    if origin in allowed:
        return
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    reached = _normal_origin(f"{scheme}://{conn.headers.get('host', '')}")
    if not allowed and _normal_origin(origin) == reached:
        return
    raise PermissionDeniedError(
        f"origin {origin!r} is not allowed: this edge was reached as {reached!r} "
        "(see --allow-origin; behind a proxy, --trusted-proxy)"
    )


def _normal_origin(origin: str) -> str:
    """`HTTP://App.Example:80` → `http://app.example`: the default port is no port."""
    scheme, _, host = origin.lower().partition("://")
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        host = host.removesuffix(default)
    return f"{scheme}://{host}"
