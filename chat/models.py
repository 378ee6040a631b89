"""Conversations, their messages, the citations kept with each answer, and prompt templates.

Models hold fields, constraints and small derived properties only; the work is in services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from documents.models import Chunk, Document, KnowledgeBase
from usage.models import AnswerStatus


class PromptTemplate(models.Model):
    """A quick prompt: ``body`` with ``{placeholders}``, and a preset of generation parameters.
    ``owner`` empty: a global template (made in the admin) that every user sees."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="prompt_templates",
    )
    name = models.CharField(_("name"), max_length=100)
    body = models.TextField(_("body"))
    params = models.JSONField(_("generation parameters"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = (
            models.UniqueConstraint(fields=("owner", "name"), name="prompt_template_unique_name"),
            # NULL owners are distinct in SQL: global names need their own constraint.
            models.UniqueConstraint(
                fields=("name",),
                condition=models.Q(owner__isnull=True),
                name="prompt_template_unique_global_name",
            ),
        )

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    provider = models.CharField(_("provider"), max_length=50, blank=True)  # blank: the default
    model = models.CharField(_("model"), max_length=200, blank=True)  # blank: provider's default
    params = models.JSONField(_("generation parameters"), default=dict, blank=True)
    knowledge_bases = models.ManyToManyField(
        KnowledgeBase, blank=True, related_name="conversations"
    )
    # Empty: every document of the knowledge bases; otherwise only these.
    documents = models.ManyToManyField(Document, blank=True, related_name="conversations")
    system_prompt = models.TextField(_("system prompt"), blank=True)
    template = models.ForeignKey(
        PromptTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-updated_at", "-id")
        indexes = (models.Index(fields=("owner", "-updated_at")),)

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Role(models.TextChoices):
    USER = "user", _("User")
    ASSISTANT = "assistant", _("Assistant")


# An answer's status, one table for its message and its usage record (the usage app's).
MessageStatus = AnswerStatus


class Message(models.Model):
    """A question or an answer. An answer records what produced it (provider, model,
    parameters), its usage and timings, and is saved while it streams."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    content = models.TextField(_("content"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    error = models.TextField(_("error"), blank=True)
    provider = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(
        _("time to first token (ms)"), null=True, blank=True
    )
    total_ms = models.PositiveIntegerField(_("total time (ms)"), null=True, blank=True)
    # How a complete answer ended: its provider's finish ("stop", "length", "content_filter",
    # "other"), or "no_answer" when the documents did not answer and no provider was asked (the
    # weak-passage rule, chat.pipeline.NO_ANSWER_FINISH). Empty: not finished, or stopped or
    # failed before its finish.
    finish_reason = models.CharField(_("finish reason"), max_length=20, blank=True)
    # The grounding check of a complete answer (chat.grounding), written once it is saved:
    # {"supported_share": float | None, "counted": int, "supported": int,
    #  "unsupported": [{"start": int, "end": int}, ...]} (character offsets into ``content``).
    # None: not checked (not complete, no passages given, or checked before this existed).
    grounding = models.JSONField(_("grounding"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = (models.Index(fields=("conversation", "id")),)

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class Citation(models.Model):
    """A source the answer cited as ``[number]``. Title, page and quote are copied, so the
    citation survives the deletion of its chunk or document."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="citations")
    number = models.PositiveSmallIntegerField()
    chunk = models.ForeignKey(
        Chunk, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    document = models.ForeignKey(
        Document, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    document_title = models.CharField(max_length=500)
    file_name = models.CharField(max_length=255, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    score = models.FloatField(default=0.0)
    quote = models.TextField(blank=True)

    class Meta:
        ordering = ("message_id", "number")
        constraints = (
            models.UniqueConstraint(fields=("message", "number"), name="citation_unique_number"),
        )

    def __str__(self) -> str:
        return f"[{self.number}] {self.document_title}"
