from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from providers.fakes import Script

pytestmark = pytest.mark.django_db(transaction=True)


def test_ask_streams_the_offline_answer_then_prints_each_source_with_file_page_and_score(kb):
    out = StringIO()

    call_command("ask", "When are invoices paid?", "--kb", "Company", stdout=out)

    answer, _, sources = out.getvalue().partition("\nSources:\n")
    assert "Handbook, p. 1: «Invoices are paid within 30 days" in answer
    lines = sources.strip().splitlines()
    handbook = next(line for line in lines if "Handbook.pdf" in line)
    number = handbook.split("]")[0] + "]"
    assert re.fullmatch(r"\[\d+\] Handbook\.pdf, p\. 1, score [01]\.\d{4}", handbook)
    assert f"{number} Handbook, p. 1" in answer
    # The offline answer quotes only the passage that answers, and only cited sources print.
    assert not any("Contract.txt" in line for line in lines)


def test_ask_uses_the_chosen_provider_and_model_and_prints_only_cited_sources(kb, openai_fake):
    openai_fake.script = Script(tokens=["Paid ", "within ", "30 days ", "[1]."])
    out = StringIO()

    call_command(
        "ask", "When are invoices paid?", "--kb", "Company", "--provider", "openai",
        "--model", "qwen2.5:7b", stdout=out,
    )  # fmt: skip

    assert out.getvalue().startswith("Paid within 30 days [1].\n")
    assert out.getvalue().splitlines()[-2:] == ["Sources:", out.getvalue().splitlines()[-1]]
    assert out.getvalue().splitlines()[-1].startswith("[1] Handbook.pdf, p. 1, score ")
    assert openai_fake.requests[0].json()["model"] == "qwen2.5:7b"


def test_ask_names_an_unknown_knowledge_base():
    with pytest.raises(CommandError, match="no knowledge base called 'Nope'"):
        call_command("ask", "Hi", "--kb", "Nope")


def test_ask_explains_a_provider_that_is_not_configured(settings):
    settings.OPENAI_BASE_URL = ""

    with pytest.raises(CommandError, match="OPENAI_BASE_URL"):
        call_command("ask", "Hi", "--provider", "openai")
