"""A fake Exchange Online on 127.0.0.1 over real HTTPS (a trustme CA): Entra ID's token endpoint
(the OpenID configuration MSAL reads first, then ``/oauth2/v2.0/token``) and the admin API's
``/adminapi/beta/{tenant}/InvokeCommand``, in one server.

The token endpoint checks the client id and its secret, or its client assertion (a JWT signed
with the app's certificate, found by its x5t thumbprint), and issues tokens that expire after
``expires_in`` seconds. The admin API checks the bearer token and the anchor mailbox, answers
Get-Recipient, Get-<kind>, Set-<kind> and Get-AcceptedDomain from ``recipients`` and
``domains`` (a Set-* changes them, so a read-back shows the change), pages lists by
``@odata.nextLink`` (``page_size`` at a time), and records every call. ``script`` makes the next
calls answer what a test says (429, 503, the concurrency words, an error's JSON or plain text,
a 403); ``delay`` makes every call slow.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

TENANT = "6f1d3c2a-0b4e-4c55-9a77-1e2f3a4b5c6d"
CLIENT_ID = "a1b2c3d4-1111-2222-3333-444455556666"
CLIENT_SECRET = "fake-client-secret-Zq8~never-logged"  # noqa: S105 - a test's own secret
ANCHOR = f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{TENANT}"
NOT_FOUND = (
    "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
    "The operation couldn't be performed because object '{identity}' couldn't be found on "
    "'AM0PR01A001DC01.EURPR01A001.prod.outlook.com'."
)
#: Each kind's own cmdlet noun, as Exchange names them.
NOUNS = {
    "UserMailbox": "Mailbox",
    "SharedMailbox": "Mailbox",
    "RoomMailbox": "Mailbox",
    "MailUniversalDistributionGroup": "DistributionGroup",
    "MailUniversalSecurityGroup": "DistributionGroup",
    "DynamicDistributionGroup": "DynamicDistributionGroup",
    "GroupMailbox": "UnifiedGroup",
    "MailUser": "MailUser",
    "PublicFolder": "MailPublicFolder",
    "MailContact": "MailContact",
}
_LISTS = (
    "AcceptMessagesOnlyFrom",
    "AcceptMessagesOnlyFromDLMembers",
    "AcceptMessagesOnlyFromSendersOrMembers",
)


def recipient(
    address: str, kind: str, *, authenticated: bool = True, **lists: list[str]
) -> dict[str, Any]:
    """A recipient as Exchange holds it."""
    return {
        "Identity": address.split("@", maxsplit=1)[0],
        "PrimarySmtpAddress": address,
        "RecipientTypeDetails": kind,
        "RequireSenderAuthenticationEnabled": authenticated,
        **{name: list(lists.get(name, [])) for name in _LISTS},
    }


def default_recipients() -> dict[str, dict[str, Any]]:
    """One recipient of every kind, each requiring authenticated senders, and a few besides."""
    people = [
        recipient("ana@contoso.com", "UserMailbox"),
        recipient("info@contoso.com", "SharedMailbox"),
        recipient("sales@contoso.com", "MailUniversalDistributionGroup"),
        recipient("admins@contoso.com", "MailUniversalSecurityGroup"),
        recipient("everyone@contoso.com", "DynamicDistributionGroup"),
        recipient("project@contoso.com", "GroupMailbox"),
        recipient("partner@contoso.com", "MailUser"),
        recipient("archive@contoso.com", "PublicFolder"),
        recipient("room1@contoso.com", "RoomMailbox"),
        recipient("open@contoso.com", "SharedMailbox", authenticated=False),
        recipient(
            "board@contoso.com",
            "MailUniversalDistributionGroup",
            AcceptMessagesOnlyFromSendersOrMembers=["ana"],
        ),
        recipient("bob@fabrikam.com", "MailContact", authenticated=False),
    ]
    return {person["PrimarySmtpAddress"]: person for person in people}


@dataclass
class Call:
    """One InvokeCommand as the fake received it."""

    cmdlet: str
    parameters: dict[str, Any]
    headers: dict[str, str]
    url: str
    status: int = 0


@dataclass
class Scripted:
    """An answer a test asked for, given instead of the real one."""

    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeExchange:
    """Entra ID's token endpoint and Exchange's admin API; see the module's docstring."""

    folder: Path
    expires_in: int = 3600
    page_size: int = 2
    delay: float = 0.0
    recipients: dict[str, dict[str, Any]] = field(default_factory=default_recipients)
    domains: list[str] = field(default_factory=lambda: ["contoso.com", "contoso.onmicrosoft.com"])
    calls: list[Call] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _script: list[Scripted] = field(default_factory=list)
    _tokens: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ca = trustme.CA()
        self.ca_bundle = self.folder / "exchange-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_bundle))
        app_cert = self.ca.issue_cert("ndrbot-exchange-app", key_type=trustme.KeyType.RSA)
        self.certificate_path = self.folder / "exchange-app.pem"
        app_cert.private_key_and_cert_chain_pem.write_to_path(str(self.certificate_path))
        leaf = x509.load_pem_x509_certificate(app_cert.cert_chain_pems[0].bytes())
        self._app_cert = leaf
        self._runner: web.AppRunner | None = None
        self.base = ""

    # -- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/adminapi/beta/{tenant}/InvokeCommand", self._invoke)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"https://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def env(self, *, certificate: bool = False) -> dict[str, str]:
        """The settings that point the bot here."""
        credential = (
            {"EXCHANGE_CERTIFICATE_PATH": str(self.certificate_path)}
            if certificate
            else {"EXCHANGE_CLIENT_SECRET": CLIENT_SECRET}
        )
        return {
            "EXCHANGE_TENANT_ID": TENANT,
            "EXCHANGE_CLIENT_ID": CLIENT_ID,
            **credential,
            "EXCHANGE_AUTHORITY_URL": self.base,
            "EXCHANGE_API_URL": f"{self.base}/adminapi/beta",
            "EXCHANGE_CA_BUNDLE": str(self.ca_bundle),
        }

    # -- what tests ask of it --------------------------------------------------------------

    def script(self, status: int, body: Any = "", *, times: int = 1, **headers: str) -> None:
        """The next ``times`` calls answer ``status`` with ``body`` (a dict as JSON, a str as
        plain text, or as HTML when it starts with "<")."""
        if isinstance(body, dict):
            text, kind = json.dumps(body), "application/json"
        else:
            text = str(body)
            kind = "text/html" if text.startswith("<") else "text/plain"
        wire = {name.replace("_", "-"): value for name, value in headers.items()}
        self._script.extend(Scripted(status, text, kind, wire) for _ in range(times))

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (401)."""
        self._tokens.clear()

    def cmdlets(self) -> list[str]:
        return [call.cmdlet for call in self.calls]

    # -- Entra ID --------------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        root = f"{self.base}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "issuer": f"{root}/v2.0",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_types_supported": ["code", "token"],
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        fields = {key: str(value) for key, value in form.items()}
        self.token_requests.append(fields)
        endpoint = f"{self.base}/{request.match_info['tenant']}/oauth2/v2.0/token"
        refused = self._refusal(fields, endpoint, request.match_info["tenant"])
        if refused:
            return web.json_response(
                {"error": "invalid_client", "error_description": f"{refused}\r\nTrace ID: 1"},
                status=401,
            )
        token = f"token-{len(self.token_requests)}"
        self._tokens[token] = time.monotonic() + self.expires_in
        return web.json_response(
            {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token}
        )

    def _refusal(self, fields: dict[str, str], endpoint: str, tenant: str) -> str:
        if tenant != TENANT:
            return "AADSTS90002: Tenant not found."
        if fields.get("client_id") != CLIENT_ID or fields.get("grant_type") != "client_credentials":
            return "AADSTS700016: Application not found in the directory."
        if "client_secret" in fields:
            if fields["client_secret"] != CLIENT_SECRET:
                return "AADSTS7000215: Invalid client secret provided."
            return ""
        assertion = fields.get("client_assertion")
        if not assertion:
            return "AADSTS7000218: The request body must contain client_assertion or client_secret."
        return self._assertion_problem(assertion, endpoint)

    def _assertion_problem(self, assertion: str, endpoint: str) -> str:
        """A client assertion passes when signed with the app's certificate's key, named by its
        SHA-1 thumbprint (x5t), for this token endpoint, by the app itself."""
        der = self._app_cert.public_bytes(Encoding.DER)
        x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324
        said = str(jwt.get_unverified_header(assertion).get("x5t") or "").rstrip("=")
        if said != x5t:
            return (
                "AADSTS700027: The certificate used to sign the client assertion is not registered."
            )
        try:
            claims = jwt.decode(
                assertion,
                self._app_cert.public_key(),
                algorithms=["RS256", "PS256"],
                audience=endpoint,
            )
        except jwt.PyJWTError as error:
            return f"AADSTS700027: Client assertion failed signature validation. ({error})"
        if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
            return "AADSTS700021: Client assertion application identifier doesn't match."
        return ""

    # -- the admin API ---------------------------------------------------------------------

    async def _invoke(self, request: web.Request) -> web.Response:
        body = await request.json()
        cmdlet_input = body.get("CmdletInput") or {}
        call = Call(
            cmdlet=str(cmdlet_input.get("CmdletName")),
            parameters=dict(cmdlet_input.get("Parameters") or {}),
            headers=dict(request.headers),
            url=str(request.url),
        )
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self._answer(request, call)
        call.status = answer.status
        return answer

    def _answer(self, request: web.Request, call: Call) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expires = self._tokens.get(bearer)
        if expires is None or expires < time.monotonic():
            return web.Response(status=401, text="", headers={"WWW-Authenticate": "Bearer"})
        if (
            request.match_info["tenant"] != TENANT
            or request.headers.get("X-AnchorMailbox") != ANCHOR
        ):
            return _error(400, "Ex0|InvalidAnchor|The anchor mailbox is not this tenant's.")
        if self._script:
            scripted = self._script.pop(0)
            return web.Response(
                status=scripted.status,
                text=scripted.body,
                content_type=scripted.content_type,
                headers=scripted.headers,
            )
        try:
            found = self._run(call.cmdlet, call.parameters)
        except _CmdletError as error:
            return _error(error.status, error.message)
        skip = int(request.query.get("$skiptoken", "0"))
        page = found[skip : skip + self.page_size]
        answer: dict[str, Any] = {
            "@odata.context": f"{self.base}/adminapi/beta/$metadata#{call.cmdlet}",
            "value": page,
        }
        if skip + self.page_size < len(found):
            answer["@odata.nextLink"] = (
                f"{self.base}/adminapi/beta/{TENANT}/InvokeCommand"
                f"?$skiptoken={skip + self.page_size}"
            )
        return web.json_response(answer)

    def _run(self, cmdlet: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        verb, _, noun = cmdlet.partition("-")
        if cmdlet == "Get-AcceptedDomain":
            return [
                {"DomainName": domain, "DomainType": "Authoritative"} for domain in self.domains
            ]
        identity = str(parameters.get("Identity", ""))
        found = self._find(identity)
        if cmdlet == "Get-Recipient":
            if found is None:
                raise _CmdletError(404, NOT_FOUND.format(identity=identity))
            keep = ("Identity", "PrimarySmtpAddress", "RecipientTypeDetails")
            return [{key: found[key] for key in keep}]
        if verb not in ("Get", "Set") or noun not in set(NOUNS.values()):
            raise _CmdletError(
                400,
                f"Ex0|CommandNotFoundException|The term '{cmdlet}' is not recognized as a cmdlet.",
            )
        if found is None or NOUNS[found["RecipientTypeDetails"]] != noun:
            raise _CmdletError(404, NOT_FOUND.format(identity=identity))
        if verb == "Get":
            return [json.loads(json.dumps(found))]
        self._set(found, parameters)
        return []

    def _set(self, found: dict[str, Any], parameters: dict[str, Any]) -> None:
        for name, value in parameters.items():
            if name == "Identity":
                continue
            if name == "RequireSenderAuthenticationEnabled":
                if not isinstance(value, bool):
                    raise _CmdletError(
                        400, "Ex0|ParameterBindingException|Cannot convert value to System.Boolean."
                    )
                found[name] = value
            elif name in _LISTS:
                if (
                    not isinstance(value, dict)
                    or value.get("@odata.type") != "#Exchange.GenericHashTable"
                ):
                    raise _CmdletError(
                        400,
                        f"Ex0|ParameterBindingException|Cannot bind '{name}': not a hashtable.",
                    )
                for added in value.get("Add") or []:
                    sender = self._find(str(added))
                    if sender is None:
                        raise _CmdletError(404, NOT_FOUND.format(identity=added))
                    if sender["Identity"] not in found[name]:
                        found[name].append(sender["Identity"])
            else:
                raise _CmdletError(
                    400,
                    f"Ex0|ParameterBindingException|No parameter matches the name '{name}'.",
                )

    def _find(self, identity: str) -> dict[str, Any] | None:
        identity = identity.lower()
        for person in self.recipients.values():
            if identity in (person["PrimarySmtpAddress"].lower(), person["Identity"].lower()):
                return person
        return None


class _CmdletError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> web.Response:
    """An error as the admin API answers one: OData JSON, the cmdlet's record in its details."""
    return web.json_response(
        {
            "error": {
                "code": "InternalServerError" if status >= 500 else "BadRequest",
                "message": "Error executing cmdlet",
                "details": [{"code": "Context", "target": "", "message": message}],
                "innererror": {
                    "message": "Error executing cmdlet",
                    "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                },
            }
        },
        status=status,
    )
