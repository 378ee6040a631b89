"""The Content-Security-Policy header (django-csp) without a browser: on pages, the admin, the
API docs and error pages; a view's own policy (the original files' ``sandbox``) is kept; and no
template holds what the policy would block (inline scripts, handlers or styles).
test_browser_csp.py checks the same pages in Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from csp.middleware import CSPMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

ROOT = Path(__file__).resolve().parents[2]
POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


def _assert_policy(response: Any) -> None:
    policy = response.headers.get("Content-Security-Policy")
    assert policy is not None, f"{response.status_code} without a Content-Security-Policy"
    directives = [d.strip() for d in policy.split(";")]
    for directive in POLICY:
        assert directive in directives, f"{directive!r} not in {policy!r}"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
def test_pages_admin_docs_and_errors_carry_the_policy(
    client, django_user_model, password, settings
):
    settings.DEBUG = False  # the real error pages (DEBUG's technical pages are left alone)
    for path in ("/accounts/login/", "/accounts/signup/"):
        _assert_policy(client.get(path))
    staff = django_user_model.objects.create_superuser("root", "root@example.com", password)
    client.force_login(staff)
    for path in ("/", "/kb/", "/account/tokens/", "/admin/", "/api/v1/docs"):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_policy(response)
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    _assert_policy(missing)
    _assert_policy(client.get("/api/v1/knowledge-bases/999999"))


def test_a_policy_set_by_the_view_is_kept(rf: RequestFactory):
    """The original files are served with their own ``Content-Security-Policy: sandbox``: the
    middleware adds the site policy only where a response has none."""

    def view(request: HttpRequest) -> HttpResponse:
        response = HttpResponse(b"%PDF-1.4", content_type="application/pdf")
        response["Content-Security-Policy"] = "sandbox"
        return response

    response = CSPMiddleware(view)(rf.get("/api/v1/documents/1/file"))
    assert isinstance(response, HttpResponse)
    assert response["Content-Security-Policy"] == "sandbox"
    page = CSPMiddleware(lambda request: HttpResponse("<p>hi</p>"))(rf.get("/"))
    assert isinstance(page, HttpResponse)
    _assert_policy(page)


# What a strict policy refuses, written into a template: an event-handler attribute, a style
# attribute or block, an inline script (a <script> without src, other than JSON data).
INLINE = [
    re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE),
    re.compile(r"<[a-z][^>]*\sstyle\s*=", re.IGNORECASE),
    re.compile(r"<style\b", re.IGNORECASE),
    re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.IGNORECASE),
    re.compile(r"javascript:", re.IGNORECASE),
]


def test_no_template_holds_inline_script_or_style():
    templates = [
        path
        for folder in ("templates", "accounts", "chat", "documents", "providers", "web", "raggen")
        for path in (ROOT / folder).rglob("*.html")
    ]
    assert ROOT / "templates" / "base.html" in templates
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in templates
        for pattern in INLINE
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def _form_action(**env: str) -> str:
    from conftest import subprocess_env

    code = (
        "from django.conf import settings; "
        "print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(**{"YANDEX_OAUTH_CLIENT_ID": "", "OIDC_CLIENT_ID": "", **env}),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip()


def test_forms_post_to_our_origin_unless_a_social_login_must_redirect_off_it():
    """Chromium checks form-action on the redirects that follow a POST: allauth's provider
    button posts to us and is redirected to the provider, so that needs https: targets."""
    assert _form_action() == "'self'"
    assert _form_action(YANDEX_OAUTH_CLIENT_ID="app") == "'self' https:"
