"""Usage: one record per answer, which the analytics and the daily quotas count.

Models hold fields, constraints and small derived properties only; the work is in services,
selectors and quotas. The record refers to chat's conversation and message by name (chat stands
above this app and is never imported here).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AnswerStatus(models.TextChoices):
    """Where an answer is: its message's status (``chat.models.MessageStatus`` is this class) and
    its usage record's (``streaming``: under way, or a quota's reservation)."""

    STREAMING = "streaming", _("Streaming")
    COMPLETE = "complete", _("Complete")
    STOPPED = "stopped", _("Stopped")
    FAILED = "failed", _("Failed")


class UsageRecord(models.Model):
    """One answer's usage, written when it ends: complete, stopped or failed (for a user with a
    daily limit it is written ``streaming`` when the answer starts, the quota's reservation, and
    settled when it ends). It outlives its message and conversation (an answer asked again
    replaces its message), so the analytics and the quotas count what was really spent.
    ``knowledge_base_ids``: those the answer searched (a conversation's may change between
    messages). ``best_score``: the best dense (cosine) score retrieved; ``no_good_context``:
    knowledge bases were searched but nothing retrieved scored at least
    ``USAGE_GOOD_CONTEXT_SCORE`` (or nothing was retrieved), or the answer was ``refused``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_records",
    )
    conversation = models.ForeignKey(
        "chat.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.OneToOneField(
        "chat.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage"
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    provider = models.CharField(_("provider"), max_length=50)
    model = models.CharField(_("model"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=AnswerStatus.choices)
    error_kind = models.CharField(_("error kind"), max_length=100, blank=True)
    error = models.TextField(_("error"), blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    first_token_ms = models.PositiveIntegerField(
        _("time to first token (ms)"), null=True, blank=True
    )
    total_ms = models.PositiveIntegerField(_("total time (ms)"), default=0)
    knowledge_base_ids = models.JSONField(_("knowledge bases"), default=list, blank=True)
    question = models.TextField(_("question"), blank=True)
    passages_retrieved = models.PositiveIntegerField(_("passages retrieved"), null=True, blank=True)
    best_score = models.FloatField(_("best retrieval score"), null=True, blank=True)
    no_good_context = models.BooleanField(_("no good context"), default=False)
    # The answer said the documents do not answer, and no provider was asked (chat's weak-passage
    # rule; its message's finish_reason is "no_answer"). Such an answer also has no good context.
    refused = models.BooleanField(_("refused"), default=False)
    # The share of the answer's sentences supported by the passages given to the model (the
    # grounding check, chat.grounding); None: not checked (no passages, not complete, or no
    # sentence counted). Here, not on the message: the analytics outlive it.
    grounded_share = models.FloatField(_("supported sentences"), null=True, blank=True)

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage")
        # Made by chat's migrations: the model moved, the table stayed.
        db_table = "chat_usagerecord"
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=("created_at",)),
            models.Index(fields=("user", "created_at")),
            models.Index(
                fields=("created_at",),
                condition=models.Q(no_good_context=True),
                name="usage_no_good_context",
            ),
        )

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.status} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
