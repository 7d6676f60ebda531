"""Chat rows -> token ids with a supervision mask, using the tokenizer's own chat template.

Each assistant turn is rendered as the template renders it; the text the template adds before the turn
(the assistant header) is context, the turn's own text up to its end marker is supervised. Segments are
tokenised separately, exactly as a prompt is tokenised at inference before generation starts, so training
and serving see the same ids.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase


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


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=generation_prompt)


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], max_len: int) -> EncodedChat:
    """Supervise every assistant turn whose weight is not 0 (OpenAI's per-message `weight`)."""
    ids: list[int] = []
    supervised: list[bool] = []
    positions: list[int] = []
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt_text = _render(tokenizer, messages[:index], generation_prompt=True)
        full_text = _render(tokenizer, messages[: index + 1], generation_prompt=False)
        if not prompt_text.startswith(rendered) or not full_text.startswith(prompt_text):
            raise ValueError("the chat template does not render conversations as growing prefixes")
        context = _ids(tokenizer, prompt_text[len(rendered):])
        answer = _ids(tokenizer, full_text[len(prompt_text):])
        train = message.get("weight", 1) != 0
        ids += context + answer
        supervised += [False] * len(context) + [train] * len(answer)
        positions += [0] * len(context) + (list(range(1, len(answer) + 1)) if train else [0] * len(answer))
        rendered = full_text
    truncated = len(ids) > max_len
    return EncodedChat(ids[:max_len], supervised[:max_len], positions[:max_len], truncated)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]],
                  assistant_prefix: str = "") -> list[int]:
    """Ids of a prompt ready for generation, optionally with the assistant's reply already begun
    (the prefilling attack)."""
    ids = _ids(tokenizer, _render(tokenizer, messages, generation_prompt=True))
    return ids + (_ids(tokenizer, assistant_prefix) if assistant_prefix else [])
