"""A conversation exported with its context: every answer with its sources (document, page,
quoted passage), as Markdown or JSON. PDF is not offered: no well-kept PDF writer is among our
dependencies (pdfminer only reads)."""

from __future__ import annotations

from typing import Any

from chat.models import Conversation, Message
from chat.selectors import message_list_for_conversation


def _citation_dict(message: Message) -> list[dict[str, Any]]:
    return [
        {
            "number": c.number,
            "document_id": c.document_id,
            "document_title": c.document_title,
            "file_name": c.file_name,
            "page": c.page,
            "score": c.score,
            "quote": c.quote,
        }
        for c in message.citations.all()
    ]


def conversation_export_json(conversation: Conversation) -> dict[str, Any]:
    """The conversation, its settings and every message with its citations, as plain data."""
    messages = message_list_for_conversation(conversation)
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "provider": conversation.provider,
        "model": conversation.model,
        "params": conversation.params,
        "system_prompt": conversation.system_prompt,
        "knowledge_bases": [kb.name for kb in conversation.knowledge_bases.all()],
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "error": m.error,
                "provider": m.provider,
                "model": m.model,
                "params": m.params,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "first_token_ms": m.first_token_ms,
                "total_ms": m.total_ms,
                "created_at": m.created_at.isoformat(),
                "citations": _citation_dict(m),
            }
            for m in messages
        ],
    }


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _markdown_message(message: Message) -> list[str]:
    who = "Question" if message.role == "user" else "Answer"
    lines = [f"## {who}", ""]
    if message.role == "assistant":
        made_by = " · ".join(filter(None, [message.provider, message.model]))
        if made_by:
            lines += [f"*{made_by}*", ""]
    lines += [message.content.strip() or "*(empty)*", ""]
    if message.status in ("stopped", "failed"):
        lines += [f"*The answer {message.status}: {message.error}*", ""]
    citations = list(message.citations.all())
    if citations:
        lines += ["### Sources", ""]
        for c in citations:
            page = f", p. {c.page}" if c.page is not None else ""
            lines += [f"**[{c.number}] {c.document_title}{page}**", "", _quote(c.quote), ""]
    return lines


def conversation_export_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document: questions, answers, and under each answer the
    sources it cited with their quoted passages."""
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    kbs = ", ".join(kb.name for kb in conversation.knowledge_bases.all())
    if kbs:
        lines += [f"Knowledge bases: {kbs}", ""]
    for message in message_list_for_conversation(conversation):
        lines += _markdown_message(message)
    return "\n".join(lines).rstrip() + "\n"
