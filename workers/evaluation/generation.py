"""Batched generation with left padding and the KV cache."""

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@torch.no_grad()
def generate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Sequence[int]],
             max_new_tokens: int, batch_size: int = 32) -> list[str]:
    """Greedy completions of token-id prompts; only the new text is returned."""
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    model.eval()
    outputs: list[str] = []
    for begin in range(0, len(prompts), batch_size):
        chunk = prompts[begin:begin + batch_size]
        width = max(len(p) for p in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, prompt in enumerate(chunk):
            input_ids[row, width - len(prompt):] = torch.tensor(list(prompt))
            attention[row, width - len(prompt):] = 1
        generated = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                   max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id,
                                   eos_token_id=tokenizer.eos_token_id)
        outputs += tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
    return outputs
