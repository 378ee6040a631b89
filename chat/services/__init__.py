"""Writes of the chat: conversations, prompt templates, and the answer itself.

:func:`message_send` is the one async service the transports call. It saves the question,
starts the answer as a task detached from the caller (so a browser that goes away does not stop
it), and yields the answer's typed events while the caller listens. The task saves the answer as
it streams (at most every ``SAVE_EVERY`` seconds) and marks it ``stopped`` or ``failed`` with
the partial text and the reason. :func:`answer_stop` cancels it explicitly.
"""

from __future__ import annotations

from chat.services._answers import (
    STOPPED_REASON,
    answer_follow,
    answer_running,
    answer_stop,
    answer_wait,
    conversation_check,
    message_answer,
    message_send,
)
from chat.services._conversations import (
    conversation_create,
    conversation_delete,
    conversation_update,
    title_from_question,
)
from chat.services._templates import (
    prompt_template_create,
    prompt_template_render,
    prompt_template_update,
    template_placeholders,
)
from chat.services._turns import INTERRUPTED_REASON

__all__ = [
    "INTERRUPTED_REASON",
    "STOPPED_REASON",
    "answer_follow",
    "answer_running",
    "answer_stop",
    "answer_wait",
    "conversation_check",
    "conversation_create",
    "conversation_delete",
    "conversation_update",
    "message_answer",
    "message_send",
    "prompt_template_create",
    "prompt_template_render",
    "prompt_template_update",
    "template_placeholders",
    "title_from_question",
]
