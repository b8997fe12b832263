"""Chat front ends' background tasks (a chat's title, tags, follow-up suggestions), recognised in a chat request and
answered at once from the conversation's own text: no retrieval, no model, no wait in the model's queue.

Open WebUI sends each task as one user message that starts with "### Task:", holds the conversation between
<chat_history> tags ("USER: ...", "ASSISTANT: ...") and asks for a JSON object with one key ("title", "tags",
"follow_ups", "queries", "prompt", "text"). LibreChat asks for a "5-word-or-less title" of a conversation written
as "User: ..." / "AI: ..." and takes the reply's text as the title.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

OPEN_WEBUI_TASK = re.compile(r"^\s*###\s*Task:", re.IGNORECASE)
OPEN_WEBUI_HISTORY = re.compile(r"<chat_history>(.*?)(?:</chat_history>|$)", re.DOTALL)
OPEN_WEBUI_TURN = re.compile(r"^(USER|ASSISTANT|SYSTEM):[ \t]?", re.MULTILINE)
JSON_KEY = re.compile(r'\{\s*"(\w+)"\s*:')
LIBRECHAT_TITLE = re.compile(r"5-word-or-less title", re.IGNORECASE)
LIBRECHAT_USER_TURN = re.compile(
    r"(?:^|\n)\s*(?:\|\|>)?User:\s*(.*?)\s*(?=\n\s*(?:\|\|>)?(?:AI|Assistant|Response|Title):|\Z)", re.DOTALL
)
SENTENCE_END = re.compile(r"(?<=[?!])\s+|(?<=[？！。])")  # not ".": "Mr. Smith", "e.g. rain"
TITLE_CHARS = 50  # a title is the first question, cut at a word boundary to this many characters
UNTITLED = "Chat"


@dataclass
class ClientTask:
    """A recognised background task and the reply that serves it."""

    kind: str  # the key asked for ("title", "tags", ...), or "title" for LibreChat's plain-text title
    reply: str


def client_task(prompt: str) -> ClientTask | None:
    """The background task `prompt` (the text of the request's last message) asks for, or None for a question."""
    if OPEN_WEBUI_TASK.match(prompt):
        return open_webui_task(prompt)
    questions = [turn.strip().strip('"') for turn in LIBRECHAT_USER_TURN.findall(prompt)]
    if LIBRECHAT_TITLE.search(prompt) and any(questions):
        return ClientTask("title", title_from(next(question for question in questions if question)))
    return None


def open_webui_task(prompt: str) -> ClientTask:
    """Open WebUI's task, answered with the JSON it asks for: the first question as the title; the last question as
    the search query or image prompt; no tags, follow-ups or completion (which would need the model)."""
    template, _, _ = prompt.partition("<chat_history>")
    key_match = JSON_KEY.search(template)
    key = key_match.group(1) if key_match else ""
    questions = user_turns(prompt)
    first, last = (questions[0], questions[-1]) if questions else ("", "")
    values: dict[str, object] = {
        "title": title_from(first),
        "tags": [],
        "follow_ups": [],
        "queries": [last] if last else [],
        "prompt": last,
        "text": "",
    }
    body = {key: values[key]} if key in values else {}
    return ClientTask(key or "unknown", json.dumps(body, ensure_ascii=False))


def user_turns(prompt: str) -> list[str]:
    """The user's messages in the <chat_history> of an Open WebUI task prompt, in order."""
    found = OPEN_WEBUI_HISTORY.search(prompt)
    if not found:
        return []
    parts = OPEN_WEBUI_TURN.split(found.group(1))  # [before, role, text, role, text, ...]
    return [
        text.strip() for role, text in zip(parts[1::2], parts[2::2], strict=True) if role == "USER" and text.strip()
    ]


def title_from(question: str) -> str:
    """A short title: the question's first sentence on one line, without closing punctuation, cut at a word
    boundary."""
    sentence = SENTENCE_END.split(" ".join(question.split()), maxsplit=1)[0]
    text = sentence.rstrip("?？!！.。:：;；…").strip()
    if len(text) > TITLE_CHARS:
        cut = text[:TITLE_CHARS]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return text or UNTITLED
