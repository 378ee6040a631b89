"""Creates the first administrator when there is none (``make run`` calls it)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a superuser when none exists. Credentials come from ADMIN_USERNAME, ADMIN_EMAIL "
        "and ADMIN_PASSWORD; without ADMIN_PASSWORD one is generated and printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator already exists.")
            return
        # A configured password passes the same validators as everyone else's; a generated one
        # (22 random characters) always does.
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(16)
        if settings.ADMIN_PASSWORD:
            candidate = user_model(username=settings.ADMIN_USERNAME, email=settings.ADMIN_EMAIL)
            try:
                validate_password(password, candidate)
            except ValidationError as exc:
                raise CommandError(f"ADMIN_PASSWORD is refused: {' '.join(exc.messages)}") from None
        user_model.objects.create_superuser(
            username=settings.ADMIN_USERNAME, email=settings.ADMIN_EMAIL, password=password
        )
        self._mark_email_verified(settings.ADMIN_EMAIL)
        self.stdout.write(self.style.SUCCESS(f"Created administrator {settings.ADMIN_USERNAME!r}."))
        if not settings.ADMIN_PASSWORD:
            self.stdout.write(
                self.style.WARNING(f"Its generated password, shown only now: {password}")
            )

    @staticmethod
    def _mark_email_verified(email: str) -> None:
        from allauth.account.models import EmailAddress

        user = get_user_model().objects.get(email=email, is_superuser=True)
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
