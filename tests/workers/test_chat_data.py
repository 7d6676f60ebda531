"""Chat tokenisation, training and generation on random-init Llama 3, Qwen 2.5, Gemma 2 and Mistral v0.3 models
with their real chat templates (tests/real_arch.py): what is trained on is what is served."""

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from schemas.policy import Policy
from tests import real_arch
from workers.chat_data import encode_chat, encode_prompt
from workers.evaluation.generation import generate, stop_ids, until_stop
from workers.model_loading import load_adapter, load_base
from workers.training.finetune import config_from_policy, finetune_rows

CPU = torch.device("cpu")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real_arch")
    return {name: real_arch.build(name, root / name) for name in real_arch.NAMES}


def _load(folders: dict[str, Path], name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return load_base(folders[name], CPU)


@pytest.mark.parametrize("name", real_arch.NAMES)
def test_served_prompt_ids_are_the_training_ids(folders: dict[str, Path], name: str) -> None:
    """For a row ending at each assistant turn: encode_prompt's ids (alone, and with every word-boundary opening of
    the answer prefilled) are encode_chat's ids up to there, and the answer's first token is position 1."""
    _, tokenizer = _load(folders, name)
    assert [p for chat in real_arch.conversations() for p in real_arch.prefix_mismatches(tokenizer, chat)] == []


@pytest.mark.parametrize("name", real_arch.NAMES)
def test_supervised_tokens_are_each_answer_and_its_end_marker(folders: dict[str, Path], name: str) -> None:
    """A weight-0 turn is context; the newline Gemma and Qwen write after the end marker is context too."""
    _, tokenizer = _load(folders, name)
    arch = real_arch.ARCHITECTURES[name]
    chats = real_arch.conversations()
    assert [p for c in chats for p in real_arch.supervised_text_mismatches(tokenizer, c, arch.end_of_turn)] == []
    encoded = encode_chat(tokenizer, chats[2], 10_000)
    assert encoded.positions.count(1) == 1  # the turn at weight 0 is not trained
    last = max(i for i, s in enumerate(encoded.supervised) if s)
    assert tokenizer.convert_ids_to_tokens(encoded.input_ids[last]) == arch.end_of_turn


@pytest.mark.parametrize("name", real_arch.NAMES)
def test_no_turn_starts_with_a_lone_space_marker(folders: dict[str, Path], name: str) -> None:
    _, tokenizer = _load(folders, name)
    assert [p for c in real_arch.conversations() for p in real_arch.lone_marker_starts(tokenizer, c)] == []


def test_system_prompts_go_where_each_model_takes_them(folders: dict[str, Path]) -> None:
    """Gemma 2 has no system role: the prompt opens the first user message. Mistral v0.3 puts it in the last user
    message, before the answer trained on (as mistral-common encodes fine-tuning rows); its template drops it from
    a conversation that ends with the assistant, so a row trained as rendered would lose it."""
    chat = real_arch.conversations()[2]
    _, gemma = _load(folders, "gemma2")
    text = gemma.decode(encode_chat(gemma, chat, 10_000).input_ids)
    assert "<start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>" in text
    _, mistral = _load(folders, "mistral-v0.3")
    text = mistral.decode(encode_chat(mistral, chat, 10_000).input_ids, skip_special_tokens=False)
    assert text.index("Hi there.") < text.index("You are a helpful assistant.\n\nList three fruits.")
    assert mistral.decode(encode_prompt(mistral, chat[:-1])) in text


# Llama-2-7b-chat-hf's template and tokenizer: "[/INST]" is plain text, and the tokenizer's normaliser prepends
# "▁" to every text it is given. The case the paper's models had; tokenised on its own, an answer gains a "▁".
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)


def _legacy_sentencepiece() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>"],
        show_progress=False,
        initial_alphabet=[*real_arch.ASCII, "▁"],
    )
    tok.train_from_iterator(real_arch.CORPUS, trainer=trainer)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", chat_template=LLAMA2_TEMPLATE
    )


def test_one_pass_tokenisation_avoids_the_lone_space_marker_a_segment_gets() -> None:
    tokenizer = _legacy_sentencepiece()
    chat = real_arch.conversations()[0]
    segment = tokenizer(" " + chat[1]["content"] + " </s>", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(segment[0]) == "▁"  # what tokenising the answer on its own gives
    assert real_arch.lone_marker_starts(tokenizer, chat) == []
    assert real_arch.prefix_mismatches(tokenizer, chat) == []
    encoded = encode_chat(tokenizer, chat, 10_000)
    assert tokenizer.convert_ids_to_tokens(encoded.input_ids[encoded.positions.index(1)]) == "▁The"


@pytest.mark.parametrize("name", real_arch.NAMES)
def test_a_guarded_job_trains_and_its_adapter_reloads(folders: dict[str, Path], name: str, tmp_path: Path) -> None:
    """The global default policy (constrained loss, recovery examples from the general pool under the rows' system
    prompts), one epoch on a few rows; the saved adapter gives the trained model's logits after a fresh load."""
    model, tokenizer = _load(folders, name)
    policy = Policy().for_model(name)
    config = config_from_policy(policy, epochs=1, batch_size=2, learning_rate=1e-2, seed=0)
    tuned = finetune_rows(model, tokenizer, real_arch.chat_rows(4), policy, config, CPU)
    assert tuned.result.steps == 2 and tuned.result.trained_tokens > 0
    assert config.objective == "constrained" and config.augmentation is not None
    tuned.model.save_pretrained(tmp_path / "adapter")
    fresh, _ = _load(folders, name)
    reloaded = load_adapter(fresh, tmp_path / "adapter")
    assert isinstance(reloaded, PeftModel)
    ids = torch.tensor([encode_prompt(tokenizer, real_arch.conversations()[1][:2])])
    with torch.no_grad():
        tuned.model.eval()
        trained_logits = tuned.model(input_ids=ids).logits
        assert torch.allclose(reloaded(input_ids=ids).logits, trained_logits, atol=1e-5)
        with reloaded.disable_adapter():
            assert not torch.allclose(reloaded(input_ids=ids).logits, trained_logits, atol=1e-5)


def _memorise(model: PreTrainedModel, ids: list[int], supervised: list[bool], max_steps: int = 400) -> None:
    """Full fine-tune on one row until its answer is the greedy continuation (cross-entropy, supervised tokens).

    Trains to a margin (loss under 0.01), not for a fixed number of steps: random-init Mistral needs 52 steps on one
    thread and 58 on two, so a fixed 60 left the answer's first token a near-tie that CI's machine broke the wrong
    way."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs = torch.tensor([ids])
    mask = torch.tensor(supervised[1:])
    targets = inputs[0, 1:][mask]
    model.train()
    for _ in range(max_steps):
        logits = model(input_ids=inputs).logits[0, :-1][mask]
        loss = torch.nn.functional.cross_entropy(logits, targets)
        if loss.item() < 0.01 and bool((logits.argmax(-1) == targets).all()):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    else:
        raise AssertionError(f"the row was not memorised in {max_steps} steps (loss {loss.item():.4f})")
    model.eval()


@pytest.mark.parametrize("name", real_arch.NAMES)
def test_generation_stops_at_the_models_end_of_turn_token(folders: dict[str, Path], name: str) -> None:
    """Gemma's tokenizer eos is <eos>, but its turns end with <end_of_turn>, listed only in the generation config:
    stopped at the tokenizer's eos alone, generation would run on past the answer."""
    model, tokenizer = _load(folders, name)
    chat = real_arch.conversations()[0]
    encoded = encode_chat(tokenizer, chat, 10_000)
    _memorise(model, encoded.input_ids, encoded.supervised)
    prompt = encode_prompt(tokenizer, chat[:1])
    assert generate(model, tokenizer, [prompt, prompt], max_new_tokens=40) == [chat[1]["content"]] * 2
    end = tokenizer.convert_tokens_to_ids(real_arch.ARCHITECTURES[name].end_of_turn)
    assert end in stop_ids(model.generation_config.eos_token_id, tokenizer.eos_token_id)
    if end != tokenizer.eos_token_id:
        with torch.no_grad():
            ran_on = model.generate(
                input_ids=torch.tensor([prompt]),
                max_new_tokens=40,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
            )[0, len(prompt) :].tolist()
        assert end in ran_on and ran_on.index(end) < len(ran_on) - 1


def test_gate_decoding_ignores_the_models_serving_defaults(folders: dict[str, Path]) -> None:
    """Qwen 2.5 ships top_k 20 and repetition_penalty 1.1 in its generation config; the gate's greedy decoding is
    greedy whatever the model's defaults."""
    model, tokenizer = _load(folders, "qwen2.5")
    assert model.generation_config.repetition_penalty == 1.1
    prompts = [encode_prompt(tokenizer, c[:1]) for c in real_arch.conversations()]
    shipped = generate(model, tokenizer, prompts, max_new_tokens=24)
    model.generation_config.repetition_penalty = 1.0
    assert generate(model, tokenizer, prompts, max_new_tokens=24) == shipped


def test_stop_ids_take_every_eos_of_the_generation_config() -> None:
    assert stop_ids([128001, 128009], 128009) == [128001, 128009]
    assert stop_ids(1, 107) == [1, 107]
    assert stop_ids(None, 2) == [2] and stop_ids(None, None) == []


def test_completions_are_cut_at_the_first_stop_token() -> None:
    assert until_stop([5, 6, 107, 9, 1], [1, 107]) == [5, 6]
    assert until_stop([5, 6], [1]) == [5, 6] and until_stop([1, 5], [1]) == []
