from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from provider_settings.views import providers_view
from raggen import health
from raggen.api import api, register_routers

register_routers()

handler500 = "raggen.server_errors.server_error"

# The admin signs in on the site's own login page (allauth), whose failed attempts are rate
# limited (ACCOUNT_RATE_LIMITS "login_failed"): the admin's own form had no limit at all.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", include("web.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/providers/", admin.site.admin_view(providers_view), name="admin_providers"),
    # The usage records and provider settings moved out of the chat app (issue #15): the admin's
    # old addresses of their pages still lead there.
    *(
        re_path(
            rf"^admin/chat/{model}/(?P<rest>.*)$",
            RedirectView.as_view(url=f"/admin/{app}/{model}/%(rest)s", query_string=True),
        )
        for app, model in (("usage", "usagerecord"), ("provider_settings", "providersecret"))
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
]
