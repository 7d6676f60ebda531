"""Batched generation with left padding and the KV cache.

Prompts are token ids; each batch is left-padded to its longest prompt so every row's next token sits in the
last column, and `generate` keeps the KV cache across steps. Sampling is seeded per batch, so the same prompts,
batch size and seed give the same samples on the base model and on the candidate.

Generation stops at every end-of-turn token the model's generation config lists, not only the tokenizer's
`eos_token`: chat models end a turn with a token of their own (Llama 3's `<|eot_id|>`, Gemma's `<end_of_turn>`,
Qwen's `<|im_end|>`), and a model stopped only at end-of-text writes past its turn. Completions are cut at the
first stop token, so nothing after it is judged.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Decoding:
    """temperature 0 = greedy. top_k 0 = no top-k filter. `samples` completions per prompt when sampling."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    samples: int = 1

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def label(self) -> str:
        if self.greedy:
            return "greedy"
        parts = [f"T={self.temperature:g}"]
        if self.top_p < 1.0:
            parts.append(f"top-p={self.top_p:g}")
        if self.top_k:
            parts.append(f"top-k={self.top_k}")
        return ", ".join(parts) + f" x{self.samples}"


GREEDY = Decoding()


def _sampling_kwargs(decoding: Decoding) -> dict[str, object]:
    """Every setting the decoding depends on, stated: `generate` fills unset ones from the model's generation
    config, and shipped configs carry serving defaults (Qwen 2.5: top_k 20, repetition_penalty 1.1) that would
    change what the policy asked for, and differ between models. top_k 0 disables the filter."""
    if decoding.greedy:
        return {"do_sample": False, "repetition_penalty": 1.0}
    return {
        "do_sample": True,
        "repetition_penalty": 1.0,
        "temperature": decoding.temperature,
        "top_p": decoding.top_p,
        "top_k": decoding.top_k,
        "num_return_sequences": decoding.samples,
    }


def stop_ids(config_eos: int | Sequence[int] | None, tokenizer_eos: int | None) -> list[int]:
    """Every id that ends a completion: the generation config's eos id(s), then the tokenizer's, without repeats."""
    listed = [] if config_eos is None else [config_eos] if isinstance(config_eos, int) else list(config_eos)
    return list(dict.fromkeys([*listed, *([] if tokenizer_eos is None else [tokenizer_eos])]))


def model_stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    config = getattr(model, "generation_config", None)
    return stop_ids(getattr(config, "eos_token_id", None), tokenizer.eos_token_id)


def until_stop(ids: Sequence[int], stops: Sequence[int]) -> list[int]:
    """The ids before the first stop id (all of them when none occurs)."""
    stop_set = set(stops)
    return list(next((ids[:i] for i, t in enumerate(ids) if t in stop_set), ids))


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    batch_size: int = 32,
    decoding: Decoding = GREEDY,
    seed: int = 0,
) -> list[str]:
    """Completions of token-id prompts; only the new text is returned. With sampling, each prompt yields
    `decoding.samples` completions, consecutive in the output (prompt 0's samples first)."""
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    model.eval()
    outputs: list[str] = []
    kwargs = _sampling_kwargs(decoding)
    stops = model_stop_ids(model, tokenizer)
    for index, begin in enumerate(range(0, len(prompts), batch_size)):
        chunk = prompts[begin : begin + batch_size]
        width = max(len(p) for p in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, prompt in enumerate(chunk):
            input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt))
            attention[row, width - len(prompt) :] = 1
        if not decoding.greedy:
            torch.manual_seed(seed * 1_000_003 + index)
        generated = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad_id,
            eos_token_id=stops or None,
            **kwargs,
        )
        completions = [until_stop(row.tolist(), stops) for row in generated[:, width:]]
        outputs += tokenizer.batch_decode(completions, skip_special_tokens=True)
    return outputs
