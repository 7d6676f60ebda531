"""Build gft-tiny-chat into a Hugging Face folder: byte-level BPE tokenizer, chat template, Llama weights.

Two stages like a real chat model: a base stage that learns benign skills and compliance, then an
alignment stage that teaches refusals. Deterministic for a seed on one machine; cached by a hash of its recipe.

The weights are also bundled (`workers/tiny/model/`), and `build` installs that copy when its recipe hash
matches. Why: CPUs differ in their floating-point kernels, and a 1M-parameter model trained for 1,250 steps
amplifies those last-bit differences into a different model; on one machine the same recipe gave 0.8% and on
another 8.3% held-out ASR. The bundled copy is the one whose figures docs/tiny_world.md reports and the tests
check. `python -m workers.tiny.build DIR --force` trains from scratch (same machine, same bytes).

The hash covers what the model is made from (the two stages' rows and tokenizer corpus, this module and the
recipe), not the rest of the world module, so attack and evaluation sets can change without a rebuild.
"""

import ast
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from workers.chat_data import encode_chat
from workers.tiny import world
from workers.training.recipe import GuardedTrainer, TrainConfig

MODEL_ID = "gft-tiny-chat"
BUNDLED = Path(__file__).resolve().parent / "model"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
Recipe = dict[str, Any]
RECIPE: Recipe = {
    "vocab": 1024,
    "hidden": 128,
    "layers": 4,
    "heads": 4,
    "ffn": 384,
    "base_rows": 6000,
    "align_rows": 4000,
    "base_epochs": 4,
    "align_epochs": 4,
    "lr": 3e-3,
    "batch": 32,
    "seed": 1243,
}


def training_rows(recipe: Recipe = RECIPE) -> tuple[list[world.Row], list[world.Row]]:
    """The base and alignment stages' rows, drawn from the recipe's seed in the order the build draws them."""
    rng = random.Random(recipe["seed"])
    base_rows = world.base_stage(rng, recipe["base_rows"])
    return base_rows, world.alignment_stage(rng, recipe["align_rows"])


def code_fingerprint(source: str) -> bytes:
    """A build script's code as its syntax tree without the import statements: what the build does, not how it
    is laid out or where its helpers live, so reformatting or moving a module does not invalidate the bundled
    model, while any change to what runs does."""
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)]
    return ast.dump(tree).encode()


def recipe_hash(recipe: Recipe = RECIPE) -> str:
    base_rows, align_rows = training_rows(recipe)
    made_of = {"rows": [base_rows, align_rows], "corpus": _corpus(base_rows + align_rows), "recipe": recipe}
    sources = [json.dumps(made_of, sort_keys=True).encode(), code_fingerprint(Path(__file__).read_text("utf-8"))]
    return hashlib.sha256(b"".join(sources)).hexdigest()[:16]


def _train_tokenizer(corpus: list[str], vocab: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>", pad_token="<|pad|>", chat_template=CHAT_TEMPLATE
    )


def _corpus(rows: list[world.Row]) -> list[str]:
    extra = [world.IDENTITY_SYSTEM, world.IDENTITY_PREFIX, world.IDENTITY_OPENING]
    return [m["content"] for row in rows for m in row["messages"]] + extra


def _stage(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    rows: list[world.Row],
    epochs: int,
    recipe: Recipe,
    seed: int,
    log: bool,
) -> float:
    examples = [encode_chat(tokenizer, r["messages"], max_len=128) for r in rows]
    config = TrainConfig(
        epochs=epochs,
        batch_size=recipe["batch"],
        learning_rate=recipe["lr"],
        objective="sft",
        adam_beta1=0.9,
        warmup_steps=20,
        max_steps=100_000,
        seed=seed,
        log_every=100,
    )
    trainer = GuardedTrainer(
        model,
        examples,
        config,
        tokenizer.pad_token_id,
        torch.device("cpu"),
        on_event=(lambda m, _d: print("  " + m, flush=True)) if log else None,
    )
    return trainer.train().final_loss


def _built_hash(folder: Path) -> str | None:
    marker = folder / "gft_recipe.json"
    return json.loads(marker.read_text()).get("hash") if marker.is_file() else None


def install_bundled(out: Path) -> Path:
    """Copy the bundled folder to `out`, staged beside it and renamed into place, so a reader never sees half."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for item in BUNDLED.iterdir():
            shutil.copy2(item, staging / item.name)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def build(out: Path, force: bool = False, log: bool = True, recipe: Recipe = RECIPE) -> Path:
    """Build (or reuse) the model folder at `out`; returns it. Without `force`, a folder already built from this
    recipe is reused, and else the bundled copy is installed when it was built from this recipe."""
    marker = out / "gft_recipe.json"
    digest = recipe_hash(recipe)
    if not force and _built_hash(out) == digest:
        return out
    if not force and _built_hash(BUNDLED) == digest:
        return install_bundled(out)
    start = time.perf_counter()
    torch.manual_seed(recipe["seed"])
    base_rows, align_rows = training_rows(recipe)
    tokenizer = _train_tokenizer(_corpus(base_rows + align_rows), recipe["vocab"])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe["hidden"],
        intermediate_size=recipe["ffn"],
        num_hidden_layers=recipe["layers"],
        num_attention_heads=recipe["heads"],
        num_key_value_heads=recipe["heads"],
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    if log:
        print(f"building {MODEL_ID}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters", flush=True)
    _stage(model, tokenizer, base_rows, recipe["base_epochs"], recipe, recipe["seed"], log)
    _stage(model, tokenizer, align_rows, recipe["align_epochs"], recipe, recipe["seed"] + 1, log)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    marker.write_text(json.dumps({"hash": digest, "seconds": round(time.perf_counter() - start, 1)}))
    return out


def build_seconds(out: Path) -> float | None:
    """How long the build that produced `out` took (recorded at build time)."""
    marker = out / "gft_recipe.json"
    return json.loads(marker.read_text()).get("seconds") if marker.is_file() else None


if __name__ == "__main__":
    import sys

    build(Path(sys.argv[1] if len(sys.argv) > 1 else f"var/models/{MODEL_ID}"), force="--force" in sys.argv)
