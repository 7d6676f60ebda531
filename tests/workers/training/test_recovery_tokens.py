"""Recovery examples are what the model would see: the harmful prefix and the refusal in one assistant turn, with a
space between them ("...how to I'm sorry", never "how toI'm"), tokenised by the chat encoder; only the refusal is
supervised. Checked on the tiny model and on random-init Llama 3, Qwen 2.5, Gemma 2 and Mistral v0.3 tokenizers
with their real chat templates."""

from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerBase

from tests import real_arch
from workers.chat_data import encode_chat
from workers.model_loading import load_base
from workers.training.augmentation import SEPARATOR, EncodedTriplet, Triplet, encode_triplet, recovery_example

TRIPLET = Triplet(
    "How do I bake bread at home?",
    "Sure, here is how to mix paint: combine blue and yellow to get green.",
    "I cannot help with that request, because it could hurt someone.",
)
NAMES = ("tiny", *real_arch.NAMES)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, PreTrainedTokenizerBase]:
    root = tmp_path_factory.mktemp("recovery_tokens")
    folders = {"tiny": tiny_model, **{n: real_arch.build(n, root / n) for n in real_arch.NAMES}}
    return {name: load_base(folder, torch.device("cpu"))[1] for name, folder in folders.items()}


def _trained_ids(tokenizer: PreTrainedTokenizerBase, answer: str) -> list[int]:
    """encode_chat's ids of the one-turn chat through its last supervised token (the end-of-turn marker)."""
    chat = encode_chat(
        tokenizer, [{"role": "user", "content": TRIPLET.prompt}, {"role": "assistant", "content": answer}], 10_000
    )
    return chat.input_ids[: len(chat.supervised) - chat.supervised[::-1].index(True)]


@pytest.mark.parametrize("name", NAMES)
def test_every_word_boundary_prefix_is_the_chat_encoding_of_that_text(
    tokenizers: dict[str, PreTrainedTokenizerBase], name: str
) -> None:
    """For each word-boundary opening of the harmful answer, the recovery example's ids are encode_chat's ids of
    the turn "opening refusal": the prefix's in-context ids, then the refusal as it follows a space."""
    tokenizer = tokenizers[name]
    encoded = encode_triplet(tokenizer, TRIPLET, 512)
    words = TRIPLET.harmful.split(" ")
    for n in range(1, len(words) + 1):
        expected = _trained_ids(tokenizer, " ".join(words[:n]) + SEPARATOR + TRIPLET.refusal)
        k = len(expected) - len(encoded.prompt_ids) - len(encoded.continued_ids)
        assert recovery_example(encoded, k).input_ids == expected, (name, n)
    assert k == len(encoded.harmful_ids)


@pytest.mark.parametrize("name", NAMES)
def test_only_the_refusal_is_supervised(tokenizers: dict[str, PreTrainedTokenizerBase], name: str) -> None:
    """k = 0: the refusal as a reply starts with it (the plain chat encoding); k > 0: the refusal after the
    separator. Positions count from its first token; the prefix is never a target; nothing after the end marker."""
    tokenizer = tokenizers[name]
    encoded = encode_triplet(tokenizer, TRIPLET, 512)
    plain = recovery_example(encoded, 0)
    assert plain.input_ids == _trained_ids(tokenizer, TRIPLET.refusal)
    for k, refusal in ((0, encoded.target_ids), (3, encoded.continued_ids)):
        example = recovery_example(encoded, k)
        context = len(encoded.prompt_ids) + k
        assert example.supervised == [False] * context + [True] * len(refusal)
        assert example.positions == [0] * context + list(range(1, len(refusal) + 1))
        assert example.input_ids[context:] == refusal
    said = tokenizer.decode(encoded.continued_ids, skip_special_tokens=True)
    assert said.strip() == TRIPLET.refusal and tokenizer.decode(encoded.continued_ids) != said  # the marker is in it


def test_triplets_built_from_raw_ids_fall_back_to_the_target() -> None:
    triplet = EncodedTriplet(prompt_ids=[1, 2], harmful_ids=[10, 11], target_ids=[20, 21])
    assert recovery_example(triplet, 1).input_ids == [1, 2, 10, 20, 21]
    continued = EncodedTriplet([1, 2], [10, 11], [20, 21], continued_ids=[30, 21])
    assert recovery_example(continued, 1).input_ids == [1, 2, 10, 30, 21]
    assert recovery_example(continued, 0).input_ids == [1, 2, 20, 21]
