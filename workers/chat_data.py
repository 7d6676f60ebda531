"""Chat rows -> token ids with a supervision mask, using the tokenizer's own chat template.

The conversation is rendered to text and tokenised once; which tokens are supervised, and their 1-based position
inside their assistant turn, is read off the character offsets of each token. Why once: tokenising segments
separately can give tokens a model never sees at inference (a SentencePiece tokenizer's lone "▁" at the start of
a segment, exactly where beta_1 applies), and merges across a segment boundary differ from the served prompt's.

What the model sees is what it is served: the training text is the prompt of the last assistant turn exactly as
`encode_prompt` renders it for generation, followed by that turn's answer, so the training ids up to any assistant
turn are the inference ids. An assistant turn's supervised text is what the template adds for it after the
generation prompt (the content and its end-of-turn marker, Mistral's leading space included); whitespace the
template writes after the marker (Gemma's and Qwen's newline) is context, since generation stops at the marker.

System prompts follow the model's own conventions: a template that rejects a system role (Gemma 2) gets it at the
head of the first user message, as Gemma's later templates do; a template that places it by position (Mistral
v0.3: in the last user message) keeps it there, which in a training row is the message before the last answer,
as mistral-common encodes fine-tuning data.

Shared by training (what is supervised) and evaluation (what the gate asks), so both see the served form; it
sits beside them in workers/, not inside either (tests/workers/test_layering.py).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import TemplateError
from transformers import PreTrainedTokenizerBase

Message = Mapping[str, Any]
Conversation = list[dict[str, Any]]


@dataclass
class EncodedChat:
    """input_ids with, per token, whether it is supervised and its 1-based position in its assistant turn
    (0 for context tokens). ``truncated`` is set when max_len cut the row."""

    input_ids: list[int]
    supervised: list[bool]
    positions: list[int]
    truncated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_supervised(self) -> int:
        return sum(self.supervised)


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of the rendered text that one assistant turn writes; `train` False for a turn
    with OpenAI's `weight` 0."""

    start: int
    end: int
    train: bool


def _render(tokenizer: PreTrainedTokenizerBase, conversation: Sequence[Message], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=generation_prompt)


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def accepts_system(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template renders a system message (Gemma 2's raises on one)."""
    try:
        _render(tokenizer, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], True)
    except TemplateError:
        return False
    return True


def fold_system(conversation: Conversation) -> Conversation:
    """A leading system message moved to the head of the first user message, separated by a blank line (what
    Gemma 3's template does, and Google's advice for Gemma 2, which has no system role); dropped when no user
    message can carry it."""
    if not conversation or conversation[0]["role"] != "system":
        return conversation
    system, rest = conversation[0]["content"], conversation[1:]
    at = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
    if at is None:
        return rest
    return [*rest[:at], {**rest[at], "content": f"{system}\n\n{rest[at]['content']}"}, *rest[at + 1 :]]


def conversation_for(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]
) -> tuple[Conversation, list[bool]]:
    """The messages as the template takes them (role and content only, the system prompt folded in where the
    template has no system role), and per message whether it is an assistant turn to supervise."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    train = [m["role"] == "assistant" and m.get("weight", 1) != 0 for m in messages]
    if plain and plain[0]["role"] == "system" and not accepts_system(tokenizer):
        return fold_system(plain), train[1:]
    return plain, train


def _without_system(conversation: Conversation, index: int) -> tuple[Conversation, int]:
    if conversation and conversation[0]["role"] == "system":
        return conversation[1:], index - 1
    return conversation, index


def answer_text(tokenizer: PreTrainedTokenizerBase, conversation: Conversation, index: int) -> str:
    """What the template writes for assistant message `index` after the generation prompt. Read off the
    conversation without its system prompt when a template places that prompt by position (Mistral puts it in
    the last message only, so the prompt alone and the prompt with its answer differ before the answer)."""
    for turns, at in ((conversation, index), _without_system(conversation, index)):
        prompt = _render(tokenizer, turns[:at], generation_prompt=True)
        full = _render(tokenizer, turns[: at + 1], generation_prompt=False)
        if full.startswith(prompt):
            return full[len(prompt) :]
    raise ValueError("the chat template does not render an assistant turn as an addition to its prompt")


def _supervised_end(answer: str, start: int) -> int:
    """End of the supervised text: the answer without the whitespace a template writes after its end marker."""
    return start + len(answer.rstrip())


def _end_in(text: str, upto: str) -> int:
    if not text.startswith(upto):
        raise ValueError("the chat template does not render conversations as growing prefixes")
    return len(upto)


def render_training(
    tokenizer: PreTrainedTokenizerBase, conversation: Conversation, train: Sequence[bool]
) -> tuple[str, list[Span]]:
    """The training text (the last assistant turn's generation prompt, then its answer) and every assistant
    turn's span in it. Earlier turns are found where the conversation up to them ends in that text."""
    assistants = [i for i, m in enumerate(conversation) if m["role"] == "assistant"]
    if not assistants:
        return "", []
    last = assistants[-1]
    answers = {i: answer_text(tokenizer, conversation, i) for i in assistants}
    text = _render(tokenizer, conversation[:last], generation_prompt=True) + answers[last]
    spans = []
    for index in assistants:
        answer = answers[index]
        end = len(text) if index == last else _end_in(text, _render(tokenizer, conversation[: index + 1], False))
        if not text[:end].endswith(answer):
            raise ValueError("the chat template renders an assistant turn differently later in the conversation")
        spans.append(Span(end - len(answer), _supervised_end(answer, end - len(answer)), train[index]))
    return text, spans


def label_tokens(offsets: Sequence[tuple[int, int]], spans: Sequence[Span]) -> tuple[list[bool], list[int]]:
    """Per token: supervised, and its 1-based position in its turn (0 for context). A token belongs to the turn
    its first character belongs to."""
    supervised, positions = [], []
    counts = [0] * len(spans)
    for start, _end in offsets:
        turn = next((i for i, s in enumerate(spans) if s.start <= start < s.end), None)
        if turn is None or not spans[turn].train:
            supervised.append(False)
            positions.append(0)
            continue
        counts[turn] += 1
        supervised.append(True)
        positions.append(counts[turn])
    return supervised, positions


def tokenize_with_offsets(tokenizer: PreTrainedTokenizerBase, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    if not tokenizer.is_fast:
        raise ValueError("chat encoding needs a fast tokenizer (character offsets); this model's tokenizer is slow")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], max_len: int) -> EncodedChat:
    """Supervise every assistant turn whose weight is not 0 (OpenAI's per-message `weight`)."""
    conversation, train = conversation_for(tokenizer, messages)
    text, spans = render_training(tokenizer, conversation, train)
    if not text:
        return EncodedChat([], [], [], False)
    ids, offsets = tokenize_with_offsets(tokenizer, text)
    supervised, positions = label_tokens(offsets, spans)
    truncated = len(ids) > max_len
    return EncodedChat(ids[:max_len], supervised[:max_len], positions[:max_len], truncated)


def opening_text(tokenizer: PreTrainedTokenizerBase, conversation: Conversation, prefix: str) -> str:
    """The assistant's reply begun with `prefix`, written as the template writes a reply (Mistral puts a space
    before it; templates that trim drop the prefix's leading whitespace)."""
    if not prefix:
        return ""
    answer = answer_text(tokenizer, [*conversation, {"role": "assistant", "content": prefix}], len(conversation))
    at = answer.find(prefix.strip())
    if at < 0:
        raise ValueError("the chat template rewrites the assistant's text; an assistant prefix cannot be placed")
    return answer[:at] + prefix.lstrip()


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], assistant_prefix: str = ""
) -> list[int]:
    """Ids of a prompt ready for generation, optionally with the assistant's reply already begun (the prefilling
    attack): the same ids `encode_chat` trains on up to that point, when the prefix ends at a token boundary."""
    conversation, _ = conversation_for(tokenizer, messages)
    text = _render(tokenizer, conversation, generation_prompt=True)
    return _ids(tokenizer, text + opening_text(tokenizer, conversation, assistant_prefix))
