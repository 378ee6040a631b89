"""Provider settings managed in the admin. Models hold fields only; the work is in
:mod:`provider_settings.secrets`."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ProviderSecret(models.Model):
    """A provider setting managed in the admin (an API key, a folder id, a base URL), stored
    encrypted with a key from the environment (``PROVIDER_SECRETS_KEY``). It wins over the
    environment's value. The plaintext is never shown again, returned by an API or logged."""

    name = models.CharField(_("setting"), max_length=40, unique=True)
    ciphertext = models.TextField()
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        ordering = ("name",)
        verbose_name = _("provider setting")
        verbose_name_plural = _("provider settings")
        # Made by chat's migrations: the model moved, the table stayed.
        db_table = "chat_providersecret"

    def __str__(self) -> str:
        return self.name
