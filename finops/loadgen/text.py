"""Plausible text from a small built-in vocabulary: pure functions of a seeded ``random.Random``.

The words are about the kind of internal product an LLM platform serves (orders, tickets, invoices,
deployments), so that prompts read like real ones in logs and dashboards. Lengths are drawn from
ranges, so prompt token counts vary from call to call as real traffic does.
"""

from __future__ import annotations

import random

# fmt: off
NOUNS: tuple[str, ...] = (
    "account", "invoice", "order", "customer", "ticket", "refund", "shipment", "report", "dashboard",
    "budget", "contract", "policy", "deployment", "cluster", "service", "request", "query", "index",
    "document", "summary", "forecast", "region", "team", "feature", "model", "metric", "alert",
    "incident", "release", "pipeline", "schedule", "warehouse", "supplier", "product", "price",
    "discount", "subscription", "license", "vendor", "quota", "latency", "backlog", "migration",
    "database", "endpoint", "workflow", "template", "quarter", "campaign", "audit",
)
VERBS: tuple[str, ...] = (
    "update", "review", "explain", "cancel", "approve", "compare", "summarise", "estimate", "track",
    "reduce", "export", "configure", "check", "escalate", "migrate", "forecast", "analyse", "merge",
    "archive", "renew", "validate", "schedule", "restore", "allocate", "document", "monitor",
)
ADJECTIVES: tuple[str, ...] = (
    "monthly", "pending", "overdue", "internal", "new", "previous", "current", "regional", "detailed",
    "annual", "critical", "shared", "recent", "large", "small", "expensive", "default", "custom",
    "failed", "active", "legacy", "weekly", "quarterly", "open",
)
CONNECTORS: tuple[str, ...] = (
    "for", "with", "from", "after", "before", "across", "under", "within", "during", "against",
)
SUBJECTS: tuple[str, ...] = (
    "The team", "Our customer", "The finance group", "Each region", "The platform", "The owner",
    "A reviewer", "The system", "Support", "The vendor",
)
QUESTION_OPENERS: tuple[str, ...] = (
    "How do I", "Can you", "Why did we", "What is the best way to", "Please help me", "When should we",
    "Is it possible to", "Could you",
)
FOLLOW_UPS: tuple[str, ...] = (
    "And what about", "What if we also", "Can you go further and", "Then how do we", "Also, please",
    "OK, and could you",
)
ROLES: tuple[str, ...] = (
    "a helpful assistant for the {noun} team", "a careful analyst of {noun} data",
    "a support agent who answers questions about {noun} issues", "an expert on {noun} operations",
    "a concise assistant that drafts {noun} summaries",
)
# fmt: on


def _noun_phrase(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return f"the {rng.choice(NOUNS)}"


def _clause(rng: random.Random) -> list[str]:
    words = [rng.choice(VERBS), *_noun_phrase(rng).split()]
    if rng.random() < 0.6:
        words += [rng.choice(CONNECTORS), *_noun_phrase(rng).split()]
    return words


def sentence(rng: random.Random) -> str:
    """One declarative sentence of about 6 to 14 words."""
    words = [*rng.choice(SUBJECTS).split(), "should", *_clause(rng)]
    if rng.random() < 0.4:
        words += ["and", *_clause(rng)]
    return " ".join(words) + "."


def prose(rng: random.Random, min_words: int, max_words: int) -> str:
    """Sentences adding up to a word count drawn from [min_words, max_words] (the last one cut to fit)."""
    target = rng.randint(min_words, max_words)
    words: list[str] = []
    while len(words) < target:
        words += sentence(rng).split()
    text = " ".join(words[:target])
    return text if text.endswith(".") else text + "."


def question(rng: random.Random, follow_up: bool = False) -> str:
    """A user's question, 8 to 30 words: an opener, a request, sometimes a sentence of background."""
    opener = rng.choice(FOLLOW_UPS if follow_up else QUESTION_OPENERS)
    text = f"{opener} {' '.join(_clause(rng))}?"
    if rng.random() < 0.5:
        text = f"{sentence(rng)} {text}"
    return text


def system_prompt(rng: random.Random, min_words: int = 20, max_words: int = 80) -> str:
    """A system prompt of min_words to max_words words: a role, then instructions."""
    role = rng.choice(ROLES).format(noun=rng.choice(NOUNS))
    head = f"You are {role}."
    rest = prose(rng, max(min_words - len(head.split()), 1), max(max_words - len(head.split()), 1))
    return f"{head} {rest}"


def document(rng: random.Random, min_words: int = 100, max_words: int = 400) -> str:
    """A retrieved passage: a title line and a body of min_words to max_words words."""
    title = f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS)} {rng.choice(NOUNS)} guide"
    return f"{title}\n{prose(rng, min_words, max_words)}"
