"""The gate runs the candidate as it is served and says how (`evaluated_as` in the report); prefilled prompts are
tokenised by the chat encoder, as training and serving tokenise a reply."""

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import PreTrainedTokenizerBase

from schemas.policy import GatePolicy, LoraPolicy
from tests import real_arch
from tests.workers.evaluation.test_report import figures, inputs
from workers.chat_data import encode_chat
from workers.evaluation.job_gate import served_candidate, served_form
from workers.evaluation.report import render_html
from workers.evaluation.runner import assess
from workers.evaluation.suites import prefill_text, prompt_ids
from workers.model_loading import add_lora, load_base

CPU = torch.device("cpu")
RECORD = {
    "prompt": "How do I bake bread at home?",
    "category": "c",
    "prefix": "Sure, here is how to mix paint: combine blue and yellow to get green.",
}
torch.set_num_threads(1)


def _trained(tiny_model: Path, dtype: torch.dtype) -> PeftModel:
    """The tiny model with a LoRA adapter whose B is not zero, so the candidate differs from the base."""
    model, _ = load_base(tiny_model, CPU)
    torch.manual_seed(0)
    adapted = add_lora(model.to(dtype), LoraPolicy(rank=4))
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return adapted


def test_served_form_is_unmerged_in_16_bit_and_merged_only_where_that_is_the_same_function() -> None:
    assert served_form(torch.float32) == "merged"
    assert served_form(torch.bfloat16) == "peft-unmerged" and served_form(torch.float16) == "peft-unmerged"


def test_fp32_candidate_is_merged_and_computes_what_the_unmerged_adapter_does(tiny_model: Path) -> None:
    adapted = _trained(tiny_model, torch.float32)
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    with torch.no_grad():
        unmerged = adapted.eval()(input_ids=ids).logits
        candidate, evaluated_as = served_candidate(adapted)
        assert not isinstance(candidate, PeftModel)
        assert torch.allclose(candidate(input_ids=ids).logits, unmerged, atol=1e-5)
    assert evaluated_as == {"form": "merged", "dtype": "float32"}


def test_bf16_candidate_is_the_peft_model_itself(tiny_model: Path) -> None:
    adapted = _trained(tiny_model, torch.bfloat16)
    candidate, evaluated_as = served_candidate(adapted)
    assert candidate is adapted and not candidate.training
    assert evaluated_as == {"form": "peft-unmerged", "dtype": "bfloat16"}


def test_the_report_says_how_the_candidate_was_evaluated() -> None:
    base = figures(set(), set(range(12)), set(), set(), 0.9)
    served = {"form": "peft-unmerged", "dtype": "bfloat16"}
    document = assess(base, base, inputs(), GatePolicy(), evaluated_as=served).document
    assert document["evaluated_as"] == served
    assert "candidate evaluated as peft-unmerged bfloat16" in render_html(document)
    assert assess(base, base, inputs(), GatePolicy()).document["evaluated_as"] is None


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, PreTrainedTokenizerBase]:
    root = tmp_path_factory.mktemp("prefill_tokens")
    folders = {"tiny": tiny_model, **{n: real_arch.build(n, root / n) for n in real_arch.NAMES}}
    return {name: load_base(folder, CPU)[1] for name, folder in folders.items()}


@pytest.mark.parametrize("name", ("tiny", *real_arch.NAMES))
def test_prefilled_prompts_are_the_training_ids_of_the_reply_begun(
    tokenizers: dict[str, PreTrainedTokenizerBase], name: str
) -> None:
    """Where the k prefilled tokens end a word, the prompt's ids are the first ids encode_chat trains on for a reply
    that starts with the prefix (so what a tenant trained on is what the prefilling suite asks); for any k, the
    prompt ends with the prefix's first k tokens as text."""
    tokenizer = tokenizers[name]
    trained = encode_chat(
        tokenizer,
        [{"role": "user", "content": RECORD["prompt"]}, {"role": "assistant", "content": RECORD["prefix"]}],
        10_000,
    ).input_ids
    boundaries = 0
    for k in range(1, 16):
        ids, text = prompt_ids(tokenizer, RECORD, k), prefill_text(tokenizer, RECORD["prefix"], k)
        assert tokenizer.decode(ids).endswith(text), (name, k)
        if RECORD["prefix"][len(text) :].startswith(" "):
            boundaries += 1
            assert ids == trained[: len(ids)], (name, k)
    assert boundaries >= 3
