"""Entra ID as far as MSAL's client-credentials flow needs it, and Graph's bearer check.

Serves the OpenID discovery document and instance discovery, and issues tokens for a
client secret or a client assertion (a JWT signed with a registered certificate: RS256 with
``x5t`` or PS256 with ``x5t#S256``; signature, ``aud``, ``iss``/``sub`` and lifetime
checked). Tokens are issued only for a known resource principal (Microsoft Graph of one of
the clouds), with that resource as ``aud``; the Graph API accepts only the global Graph's.
Access tokens are HS256 JWTs signed with a key kept in the state, so they stay valid across
restarts and carry the app's permissions as ``roles``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from icechat.dev.graph_emulator.responses import Request, Response, graph_error
from icechat.dev.graph_emulator.store import App, Store
from icechat.dev.graph_emulator.tls import thumbprints

GRAPH_RESOURCE = "https://graph.microsoft.com"
# The resource principals a tenant knows for client credentials: Microsoft Graph in each
# cloud (Learn, "Microsoft Graph national cloud deployments"; a .default scope must use the
# cloud's own Graph domain, Learn "Access national cloud deployments with the Microsoft
# Graph SDKs"). Any other resource is AADSTS500011 (Learn, "Microsoft Entra authentication
# and authorization error codes").
KNOWN_RESOURCES = frozenset(
    {
        GRAPH_RESOURCE,
        "https://graph.microsoft.us",
        "https://dod-graph.microsoft.us",
        "https://microsoftgraph.chinacloudapi.cn",
    }
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_CLOCK_SKEW_S = 300


@dataclass(frozen=True)
class Principal:
    """Who a valid bearer token was issued to."""

    client_id: str
    roles: tuple[str, ...]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Authority:
    """Discovery, token issuing and token checking for one emulated tenant."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tenant_id = store.meta("tenant_id", str(uuid.uuid4()))
        self._key = store.meta("token_key", secrets.token_hex(32)).encode()
        self.token_lifetime_s = 3599

    def knows_tenant(self, tenant: str) -> bool:
        """True for the tenant id and for any domain of a user's UPN."""
        tenant = tenant.lower()
        if tenant == self.tenant_id.lower():
            return True
        return any(u.user_principal_name.lower().endswith("@" + tenant) for u in self.store.users())

    def token_endpoint(self, base_url: str) -> str:
        """The token endpoint URL announced by discovery (always with the tenant id)."""
        return f"{base_url}/{self.tenant_id}/oauth2/v2.0/token"

    def openid_configuration(self, base_url: str, tenant: str) -> Response:
        """``/{tenant}/v2.0/.well-known/openid-configuration``."""
        if not self.knows_tenant(tenant):
            return self._aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID"
                " and are signing into the correct cloud.",
            )
        tid = self.tenant_id
        return Response(
            200,
            {
                "token_endpoint": self.token_endpoint(base_url),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base_url}/{tid}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base_url}/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{base_url}/oidc/userinfo",
                "authorization_endpoint": f"{base_url}/{tid}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base_url}/{tid}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base_url}/{tid}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    def instance_discovery(self, base_url: str, authorization_endpoint: str) -> Response:
        """``/common/discovery/instance``: for MSAL given this URL as ``instance_discovery``."""
        host = base_url.split("://", 1)[1]
        tenant = authorization_endpoint.rstrip("/").split("/")[3:4] or [self.tenant_id]
        return Response(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{base_url}/{tenant[0]}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    def issue_token(self, request: Request, tenant: str) -> tuple[Response, str | None]:
        """``POST /{tenant}/oauth2/v2.0/token``; returns the response and the client id."""
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        client_id = form.get("client_id", "")
        if not self.knows_tenant(tenant):
            return self._aad_error(
                400, "invalid_request", 90002, f"Tenant '{tenant}' not found."
            ), None
        if form.get("grant_type") != "client_credentials":
            return (
                self._aad_error(
                    400,
                    "unsupported_grant_type",
                    70003,
                    "The app requested an unsupported grant type; the emulator serves"
                    " client_credentials only.",
                ),
                client_id,
            )
        app = self.store.app(client_id) if client_id else None
        if app is None:
            return (
                self._aad_error(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory"
                    f" '{self.tenant_id}'.",
                ),
                client_id,
            )
        scopes = form.get("scope", "").split()
        if not scopes or not all(s.endswith("/.default") for s in scopes):
            return (
                self._aad_error(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {' '.join(scopes)} is not valid. Client"
                    " credential flows must have a scope value with /.default suffixed to the"
                    " resource identifier (application ID URI).",
                ),
                client_id,
            )
        resources = {s.removesuffix("/.default").lower().rstrip("/"): s for s in scopes}
        if len(resources) > 1:
            return (
                self._aad_error(
                    400,
                    "invalid_scope",
                    28000,
                    "Provided value for the input parameter scope is not valid because it"
                    " contains more than one resource.",
                ),
                client_id,
            )
        ((resource, scope),) = resources.items()
        if resource not in KNOWN_RESOURCES:
            return (
                self._aad_error(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {scope.removesuffix('/.default')} was not"
                    f" found in the tenant named {tenant}. This can happen if the application"
                    " has not been installed by the administrator of the tenant or consented to"
                    " by any user in the tenant. You might have sent your authentication request"
                    " to the wrong tenant.",
                ),
                client_id,
            )
        problem = self._check_credential(app, form, request.base_url)
        if problem is not None:
            return problem, client_id
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime_s,
            "appid": app.client_id,
            "tid": self.tenant_id,
            "roles": list(app.permissions),
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        return (
            Response(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime_s,
                    "ext_expires_in": self.token_lifetime_s,
                    "access_token": self._sign(claims),
                },
            ),
            client_id,
        )

    def _check_credential(
        self, app: App, form: Mapping[str, str], base_url: str
    ) -> Response | None:
        if "client_assertion" in form:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return self._aad_error(
                    400,
                    "invalid_request",
                    70002,
                    f"client_assertion_type must be '{ASSERTION_TYPE}'.",
                )
            return self._check_assertion(app, form["client_assertion"], base_url)
        if "client_secret" in form:
            if app.secret is None or not hmac.compare_digest(
                app.secret.encode(), form["client_secret"].encode()
            ):
                return self._aad_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request"
                    f" is the client secret value, not the client secret ID, for a secret added"
                    f" to app '{app.client_id}'.",
                )
            return None
        return self._aad_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or"
            " 'client_secret'.",
        )

    def _check_assertion(self, app: App, assertion: str, base_url: str) -> Response | None:
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except (ValueError, binascii.Error):
            return self._aad_error(
                401, "invalid_client", 50027, "JWT token is invalid or malformed."
            )
        signed = f"{head_b64}.{claims_b64}".encode()
        alg = header.get("alg")
        wanted = str(header.get("x5t#S256" if alg == "PS256" else "x5t") or "").rstrip("=")
        if alg not in ("RS256", "PS256") or not wanted:
            return self._assertion_error(f"Unsupported algorithm {alg!r} or missing thumbprint.")
        cert_pem = next((c for c in app.certificates if wanted in thumbprints(c)), None)
        if cert_pem is None:
            cert_pem = _trusted_x5c(app, header.get("x5c"))
        if cert_pem is None:
            return self._assertion_error(
                "The key was not found., Thumbprint of key used by client:"
                f" '{_b64url_decode(wanted).hex().upper()}'"
            )
        key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return self._assertion_error("The registered certificate does not hold an RSA key.")
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            if alg == "PS256"
            else padding.PKCS1v15()
        )
        try:
            key.verify(signature, signed, pad, hashes.SHA256())
        except InvalidSignature:
            return self._assertion_error("The signature does not match the registered key.")
        now = time.time()
        accepted_aud = {self.token_endpoint(base_url), f"{base_url}/{self.tenant_id}/v2.0"}
        if claims.get("aud") not in accepted_aud:
            return self._aad_error(
                401,
                "invalid_client",
                700212,
                f"The audience '{claims.get('aud')}' of the client assertion is not the token"
                f" endpoint {self.token_endpoint(base_url)}.",
            )
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            return self._aad_error(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", now))
        if (
            not isinstance(exp, int | float)
            or exp + _CLOCK_SKEW_S < now
            or nbf - _CLOCK_SKEW_S > now
        ):
            return self._aad_error(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )
        return None

    def _assertion_error(self, reason: str) -> Response:
        return self._aad_error(
            401,
            "invalid_client",
            700027,
            f"Client assertion failed signature validation. (Reason - {reason})",
        )

    def _aad_error(self, status: int, error: str, code: int, description: str) -> Response:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        return Response(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id}"
                f" Correlation ID: {correlation_id} Timestamp: {stamp}",
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": f"https://login.microsoftonline.com/error?code={code}",
            },
        )

    def _sign(self, claims: Mapping[str, Any]) -> str:
        header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        body = _b64url(json.dumps(claims).encode())
        mac = hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64url(mac)}"

    def principal(self, request: Request) -> Principal | Response:
        """The app behind the request's bearer token, or Graph's 401 answer."""
        auth = request.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized(request, "Access token is empty.")
        try:
            header, body, mac = token.strip().split(".")
            expected = hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _b64url_decode(mac)):
                return _unauthorized(request, "Access token validation failure. Invalid signature.")
            claims = json.loads(_b64url_decode(body))
        except (ValueError, binascii.Error):
            return _unauthorized(request, "IDX14100: JWT is not well formed.")
        if claims.get("exp", 0) < time.time():
            return _unauthorized(request, "Lifetime validation failed, the token is expired.")
        # A token for another resource (another cloud's Graph): microsoft-graph-docs-contrib#2362
        if claims.get("tid") != self.tenant_id or claims.get("aud") != GRAPH_RESOURCE:
            return _unauthorized(request, "Access token validation failure. Invalid audience.")
        return Principal(str(claims["appid"]), tuple(claims.get("roles") or ()))


def _trusted_x5c(app: App, chain: Any) -> str | None:
    """The ``x5c`` leaf certificate as PEM when its SHA-1 thumbprint is registered for the app."""
    if not app.thumbprints or not isinstance(chain, list) or not chain:
        return None
    try:
        der = base64.b64decode(str(chain[0]))
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    sha1 = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t is SHA-1
    if sha1 not in app.thumbprints:
        return None
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _unauthorized(request: Request, message: str) -> Response:
    return graph_error(
        request,
        401,
        "InvalidAuthenticationToken",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )
