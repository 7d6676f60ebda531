"""Build gft-tiny-chat into a Hugging Face folder: byte-level BPE tokenizer, chat template, Llama weights.

Two stages like a real chat model: a base stage that learns benign skills and compliance, then an
alignment stage that teaches refusals. Deterministic for a seed; cached by a hash of its recipe.
"""

import hashlib
import json
import random
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from workers.tiny import world
from workers.training.chat_data import encode_chat
from workers.training.recipe import GuardedTrainer, TrainConfig

MODEL_ID = "gft-tiny-chat"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
RECIPE = {"vocab": 1024, "hidden": 96, "layers": 3, "heads": 4, "ffn": 256, "base_rows": 6000,
          "align_rows": 4000, "base_epochs": 3, "align_epochs": 3, "lr": 3e-3, "batch": 32, "seed": 1234}


def recipe_hash() -> str:
    sources = [Path(world.__file__).read_bytes(), Path(__file__).read_bytes(), json.dumps(RECIPE).encode()]
    return hashlib.sha256(b"".join(sources)).hexdigest()[:16]


def _train_tokenizer(corpus: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=RECIPE["vocab"], special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>",
                                   pad_token="<|pad|>", chat_template=CHAT_TEMPLATE)


def _corpus(rows: list[world.Row]) -> list[str]:
    return [m["content"] for row in rows for m in row["messages"]] + [world.IDENTITY_SYSTEM]


def _stage(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, rows: list[world.Row], epochs: int,
           seed: int, log: bool) -> float:
    examples = [encode_chat(tokenizer, r["messages"], max_len=128) for r in rows]
    config = TrainConfig(epochs=epochs, batch_size=RECIPE["batch"], learning_rate=RECIPE["lr"], objective="sft",
                         adam_beta1=0.9, warmup_steps=20, max_steps=100_000, seed=seed, log_every=100)
    trainer = GuardedTrainer(model, examples, config, tokenizer.pad_token_id, torch.device("cpu"),
                             on_event=(lambda m, _d: print("  " + m, flush=True)) if log else None)
    return trainer.train().final_loss


def build(out: Path, force: bool = False, log: bool = True) -> Path:
    """Build (or reuse) the model folder at `out`; returns it."""
    marker = out / "gft_recipe.json"
    digest = recipe_hash()
    if not force and marker.is_file() and json.loads(marker.read_text()).get("hash") == digest:
        return out
    start = time.perf_counter()
    rng = random.Random(RECIPE["seed"])
    torch.manual_seed(RECIPE["seed"])
    base_rows = world.base_stage(rng, RECIPE["base_rows"])
    align_rows = world.alignment_stage(rng, RECIPE["align_rows"])
    tokenizer = _train_tokenizer(_corpus(base_rows + align_rows))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=RECIPE["hidden"], intermediate_size=RECIPE["ffn"],
                         num_hidden_layers=RECIPE["layers"], num_attention_heads=RECIPE["heads"],
                         num_key_value_heads=RECIPE["heads"], max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    if log:
        print(f"building {MODEL_ID}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters", flush=True)
    _stage(model, tokenizer, base_rows, RECIPE["base_epochs"], RECIPE["seed"], log)
    _stage(model, tokenizer, align_rows, RECIPE["align_epochs"], RECIPE["seed"] + 1, log)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    marker.write_text(json.dumps({"hash": digest, "seconds": round(time.perf_counter() - start, 1)}))
    return out


if __name__ == "__main__":
    import sys

    build(Path(sys.argv[1] if len(sys.argv) > 1 else f"var/models/{MODEL_ID}"), force="--force" in sys.argv)
