"""Sign-in with Yandex ID and OpenID Connect, configured from the environment only.

The provider settings come from ``raggen.settings`` evaluated in a child process with the
environment variables set (no SocialApp rows anywhere). The OpenID Connect login runs against a
real provider on loopback: discovery, authorization (with PKCE), the token endpoint returning an
RS256-signed id_token, userinfo and the key set."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from accounts.models import AuditAction, AuditEvent
from conftest import ROOT, subprocess_env

CLIENT_ID = "raggen-test"
CLIENT_SECRET = "s3cret-for-the-test"
LOGIN_URL = "/accounts/login/"


def providers_from_env(**env: str) -> Any:
    """``SOCIALACCOUNT_PROVIDERS`` as ``raggen.settings`` builds it from ``env``."""
    code = "import json; from django.conf import settings as s; "
    code += "print(json.dumps(s.SOCIALACCOUNT_PROVIDERS))"
    clean = dict.fromkeys(("YANDEX_OAUTH_CLIENT_ID", "OIDC_CLIENT_ID", "OIDC_PROVIDER_URL"), "")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(**(clean | env)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_client_id_without_the_provider_url_is_a_configuration_error():
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.INSTALLED_APPS"],
        cwd=ROOT,
        env=subprocess_env(OIDC_CLIENT_ID="x", OIDC_PROVIDER_URL=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "OIDC_CLIENT_ID needs OIDC_PROVIDER_URL" in result.stderr


@pytest.mark.django_db
def test_without_provider_variables_the_login_page_has_no_third_party_buttons(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env()

    page = client.get(LOGIN_URL).content.decode()

    assert settings.SOCIALACCOUNT_PROVIDERS == {}
    assert "/accounts/yandex/login/" not in page
    assert "/accounts/oidc/" not in page
    assert 'name="password"' in page  # e-mail and password stay
    assert client.get("/accounts/yandex/login/").status_code == 404


@pytest.mark.django_db
def test_yandex_id_variables_enable_its_button_and_its_login(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env(
        YANDEX_OAUTH_CLIENT_ID="yandex-app", YANDEX_OAUTH_CLIENT_SECRET="yandex-secret"
    )

    page = client.get(LOGIN_URL).content.decode()
    started = client.post("/accounts/yandex/login/")

    assert 'href="/accounts/yandex/login/?process=login"' in page
    assert "/accounts/oidc/" not in page
    assert not SocialApp.objects.exists()  # from settings only
    assert started.status_code == 302
    authorize = urlsplit(started["Location"])
    assert (authorize.netloc, authorize.path) == ("oauth.yandex.com", "/authorize")
    assert parse_qs(authorize.query)["client_id"] == ["yandex-app"]


# --- A real OpenID provider on loopback ---------------------------------------------------------


class FakeOpenIDProvider:
    """Discovery, /authorize (redirects back with a code), /token (checks the client, the code,
    the redirect URI and the PKCE verifier; answers with an id_token signed by a fresh RSA
    key), /userinfo (checks the access token) and /jwks."""

    def __init__(self, *, sub: str, email: str, username: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claims = {"sub": sub, "email": email, "email_verified": True}
        self.claims |= {"preferred_username": username, "name": "Carol Tester"}
        self.codes: dict[str, dict[str, str]] = {}
        self.access_token = secrets.token_urlsafe(16)
        self.token_requests: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeOpenIDProvider:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        assert "openid" in query["scope"].split() and query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"Location": target}, None

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        self.token_requests.append(form)
        asked = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if (
            asked is None
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("redirect_uri") != asked["redirect_uri"]
            or challenge.decode() != asked["code_challenge"]
        ):
            return 400, {}, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **self.claims}
        if "nonce" in asked:
            claims["nonce"] = asked["nonce"]
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "test"})
        body = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": 300}
        return 200, {}, body | {"id_token": id_token}

    def userinfo(self, authorization: str) -> tuple[int, dict[str, str], Any]:
        if authorization != f"Bearer {self.access_token}":
            return 401, {}, {"error": "invalid_token"}
        return 200, {}, self.claims

    def jwks(self) -> tuple[int, dict[str, str], Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return 200, {}, {"keys": [jwk | {"kid": "test", "alg": "RS256", "use": "sig"}]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                routes = {
                    "/.well-known/openid-configuration": lambda: (200, {}, provider.discovery()),
                    "/authorize": lambda: provider.authorize(query),
                    "/userinfo": lambda: provider.userinfo(self.headers.get("Authorization", "")),
                    "/jwks": provider.jwks,
                }
                self._answer(*routes.get(url.path, lambda: (404, {}, {}))())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self._answer(404, {}, {})
                    return
                self._answer(*provider.token(form))

            def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def openid_provider() -> Iterator[FakeOpenIDProvider]:
    with FakeOpenIDProvider(sub="sub-123", email="carol@example.com", username="carol") as fake:
        yield fake


def _redirected_by_provider(url: str) -> str:
    """Open the provider's authorization URL as the browser would and return where it sends
    the browser back (the provider signs the user in without asking, as a test IdP may)."""

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(Stop)
    try:
        opener.open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302
        return str(exc.headers["Location"])
    raise AssertionError("the provider did not redirect back")


@pytest.mark.django_db
def test_an_openid_connect_login_creates_the_user_signs_in_and_is_audited(
    client, settings, openid_provider, django_user_model
):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env(
        OIDC_PROVIDER_URL=openid_provider.url,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_NAME="Corporate SSO",
    )
    page = client.get(LOGIN_URL).content.decode()
    assert "Corporate SSO" in page
    assert 'href="/accounts/oidc/oidc/login/?process=login"' in page

    started = client.post("/accounts/oidc/oidc/login/")  # the button's confirmation form
    assert started.status_code == 302
    assert started["Location"].startswith(f"{openid_provider.url}/authorize?")
    back = urlsplit(_redirected_by_provider(started["Location"]))
    assert back.path == "/accounts/oidc/oidc/login/callback/"
    finished = client.get(f"{back.path}?{back.query}", follow=True)

    assert finished.status_code == 200
    assert finished.redirect_chain[-1][0] == settings.LOGIN_REDIRECT_URL
    user = django_user_model.objects.get(email="carol@example.com")
    assert user.username == "carol"
    assert int(client.session["_auth_user_id"]) == user.pk
    assert finished.wsgi_request.user == user
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("oidc", "sub-123")
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor=user, target="carol").exists()
    assert [r["grant_type"] for r in openid_provider.token_requests] == ["authorization_code"]


@pytest.mark.django_db
def test_a_callback_with_a_forged_code_signs_nobody_in(client, settings, openid_provider):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env(
        OIDC_PROVIDER_URL=openid_provider.url,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    started = client.post("/accounts/oidc/oidc/login/")
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]

    response = client.get(
        "/accounts/oidc/oidc/login/callback/", {"code": "forged", "state": state}, follow=True
    )

    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()
    assert response.status_code == 401  # allauth's "third-party login failure" page
    assert openid_provider.token_requests[0]["code"] == "forged"
