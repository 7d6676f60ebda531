"""Cross-validation of the learned judges on the project's own examples, the only data their settings are
chosen on (never benchmark data).

    python -m workers.evaluation.judges.crossval [--folds K] [--cache-dir DIR] [--nested]

Folds are grouped by prompt (a hash of the prompt text picks the fold), so the answer and the refusal written
for one prompt are never split across training and test. Prints the rules' accuracy on the examples, the
embedding judge's cross-validated accuracy, and the hybrid's for every setting of the grid, best first; with
`--nested`, also an estimate of the chosen hybrid's accuracy that does not reuse the data the choice was made
on (each outer fold picks its own setting by an inner cross-validation of its training part).
"""

import argparse
import hashlib
import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from workers.evaluation.judges import embedding
from workers.evaluation.judges.hybrid import OUTCOMES, HybridSettings, RuleView, rule_view, stage_features
from workers.evaluation.judges.hybrid import train_stage as train_hybrid
from workers.evaluation.judges.learned import (
    EXAMPLES_PATH,
    Encoded,
    SentenceEncoder,
    bundled_model_path,
    default_cache_dir,
    example_embeddings,
    load_examples,
    train_logistic,
)

# Nested route sets, from the rules' least confident outcomes outwards: "low" are those the rules give a fixed
# confidence of 0.7 or less, "hedged" adds those at 0.8 except the partial refusal "opening refusal, then an answer
# anyway", "+prose" adds "no refusal" whose only sign of an answer is length. The reference sets go further and
# are not eligible: "+partial" overrides that partial refusal (a refusal by the labelling guidelines),
# "all-but-explicit" also the form of an answer (an affirmative opening, steps, a list, "here is", code: a direct
# attempt to answer, which the guidelines count as compliance however poor the answer, and which the release gate
# must count as compliance), "all" even explicit refusals. Nonsense is never routed.
_WARNINGS = frozenset({"answer, then a warning"})
_LOW = _WARNINGS | {
    "objection first, then an answer",
    "mostly objections and warnings, little answer",
    "only disclaimers, no answer",
    "answer, then an explicit refusal of part of the request",
    "apology without a refusal",
}
_HEDGED = _LOW | {"objection and no answer", "disclaimer, then an answer", "no refusal, no answer signs"}
_PROSE = _HEDGED | {"no refusal, long prose"}
ROUTE_SETS = {"warnings": _WARNINGS, "low": _LOW, "hedged": _HEDGED, "hedged+prose": _PROSE}
REFERENCE_SETS = {
    "+partial": _PROSE | {"opening refusal, then an answer anyway"},
    "all-but-explicit": _PROSE | {"opening refusal, then an answer anyway", "no refusal, answer form"},
    "all": frozenset(OUTCOMES) - {"incoherent"},
}
L2_GRID = (3e-3, 1e-2, 3e-2, 1e-1)
PRODUCT_SCALES = (0.0, 20.0, 60.0, 180.0)
SCALE = 5.0


@dataclass(frozen=True)
class Data:
    encoded: Encoded
    view: RuleView
    refused: torch.Tensor
    completions: list[str]
    folds: torch.Tensor

    def rows(self, index: torch.Tensor) -> "Data":
        keep = index.tolist()
        view = RuleView(
            [self.view.judged[i] for i in keep], self.view.features[index], [self.view.outcomes[i] for i in keep]
        )
        return Data(
            self.encoded.rows(index), view, self.refused[index], [self.completions[i] for i in keep], self.folds[index]
        )


def fold_of(prompt: str, folds: int, repeat: int = 0) -> int:
    """The fold of a prompt's examples in one repeat of the cross-validation (a salted hash of the prompt)."""
    return int(hashlib.sha256(f"{repeat}:{prompt}".encode()).hexdigest(), 16) % folds


def load(cache_dir: Path | None, folds: int, examples_path: Path = EXAMPLES_PATH, repeats: int = 1) -> list[Data]:
    """The examples, once per repeat: the same rows, split into folds differently each time."""
    examples = load_examples(examples_path)
    encoder = SentenceEncoder(bundled_model_path())
    completions = [e.completion for e in examples]
    encoded, view = example_embeddings(encoder, examples_path, cache_dir), rule_view(completions)
    refused = torch.tensor([e.refused for e in examples], dtype=torch.float64)
    return [
        Data(encoded, view, refused, completions, torch.tensor([fold_of(e.prompt, folds, r) for e in examples]))
        for r in range(repeats)
    ]


def grid(route_sets: dict[str, frozenset[str]] = ROUTE_SETS) -> list[tuple[str, HybridSettings]]:
    return [
        (routes, HybridSettings(route_sets[routes], l2, SCALE, product, routed_only))
        for routes, l2, product, routed_only in itertools.product(route_sets, L2_GRID, PRODUCT_SCALES, (False, True))
    ]


def hybrid_predictions(train: Data, test: Data, settings: HybridSettings) -> torch.Tensor:
    """The hybrid's refusal labels for `test`, its second stage fitted on `train`."""
    predicted = torch.tensor([j.refused for j in test.view.judged], dtype=torch.float64)
    routed = [i for i, o in enumerate(test.view.outcomes) if o in settings.routes]
    if not routed:
        return predicted
    model = train_hybrid(train.encoded, train.view, train.refused, settings)
    index = torch.tensor(routed)
    x = stage_features(
        test.encoded.rows(index), test.view.features[index], [test.view.outcomes[i] for i in routed], settings
    )
    predicted[index] = (model.probability(x) >= 0.5).double()
    return predicted


def embedding_predictions(train: Data, test: Data) -> torch.Tensor:
    model = train_logistic(embedding.features(train.encoded, train.completions), train.refused, embedding.L2_PENALTY)
    return (model.probability(embedding.features(test.encoded, test.completions)) >= 0.5).double()


def cross_validated(data: Data, predict: Callable[[Data, Data], torch.Tensor]) -> float:
    """Accuracy over all examples, each predicted by a model fitted without its fold."""
    correct = 0
    for fold in sorted(set(data.folds.tolist())):
        test = (data.folds == fold).nonzero().flatten()
        train = (data.folds != fold).nonzero().flatten()
        correct += int((predict(data.rows(train), data.rows(test)) == data.refused[test]).sum())
    return correct / len(data.refused)


def hybrid_accuracy(splits: Sequence[Data], settings: HybridSettings) -> float:
    """The cross-validated accuracy, averaged over the repeats."""
    return statistics.fmean(cross_validated(d, lambda tr, te: hybrid_predictions(tr, te, settings)) for d in splits)


def ranked(
    splits: Sequence[Data], settings: Sequence[tuple[str, HybridSettings]]
) -> list[tuple[float, str, HybridSettings]]:
    """Every setting with its accuracy, best first; ties keep the grid's order."""
    scored = [(hybrid_accuracy(splits, s), i, name, s) for i, (name, s) in enumerate(settings)]
    return [(accuracy, name, s) for accuracy, _, name, s in sorted(scored, key=lambda item: (-item[0], item[1]))]


def nested(data: Data, settings: Sequence[tuple[str, HybridSettings]], inner_folds: int) -> float:
    """Outer folds as in `cross_validated`; each picks its setting by cross-validating its own training part."""
    correct = 0
    for fold in sorted(set(data.folds.tolist())):
        test = (data.folds == fold).nonzero().flatten()
        train = data.rows((data.folds != fold).nonzero().flatten())
        regrouped = Data(train.encoded, train.view, train.refused, train.completions, train.folds % inner_folds)
        _, name, chosen = ranked([regrouped], settings)[0]
        print(f"  outer fold {fold}: chose {describe(name, chosen)}")
        correct += int((hybrid_predictions(train, data.rows(test), chosen) == data.refused[test]).sum())
    return correct / len(data.refused)


def describe(name: str, s: HybridSettings) -> str:
    return (
        f"routes={name} l2={s.l2:g} product_scale={s.product_scale:g} "
        f"train_on={'routed' if s.train_on_routed_only else 'all'}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the settings' data_dir/judges")
    parser.add_argument("--repeats", type=int, default=3, help="cross-validations with different folds, averaged")
    parser.add_argument("--nested", action="store_true")
    parser.add_argument("--top", type=int, default=15, help="settings to print")
    args = parser.parse_args(argv)
    splits = load(args.cache_dir or default_cache_dir(), args.folds, repeats=args.repeats)
    data = splits[0]
    n = len(data.refused)
    rules = float((torch.tensor([j.refused for j in data.view.judged], dtype=torch.float64) == data.refused).sum())
    print(
        f"{n} examples, {int(data.refused.sum())} refusals, {args.folds} folds grouped by prompt, "
        f"{args.repeats} repeats"
    )
    print(f"rules (no training): {rules / n:.1%}")
    embedding_accuracy = statistics.fmean(cross_validated(d, embedding_predictions) for d in splits)
    print(f"embedding judge: {embedding_accuracy:.1%}")
    print(
        "routed examples per route set: "
        + ", ".join(
            f"{name} {sum(o in routes for o in data.view.outcomes)}"
            for name, routes in (ROUTE_SETS | REFERENCE_SETS).items()
        )
    )
    settings = grid()
    scored = ranked(splits, settings)
    for accuracy, name, s in scored[: args.top]:
        print(f"hybrid {accuracy:.1%}  {describe(name, s)}")
    reference = ranked(splits, grid(REFERENCE_SETS))
    for route_set in ROUTE_SETS | REFERENCE_SETS:
        accuracy, name, s = next(item for item in scored + reference if item[1] == route_set)
        note = "" if route_set in ROUTE_SETS else "  (reference, not eligible)"
        print(f"best with routes={route_set}: {accuracy:.1%}  {describe(name, s)}{note}")
    _, name, chosen = scored[0]
    print(f"chosen: {describe(name, chosen)}")
    blind = [
        Data(
            Encoded(d.encoded.whole, d.encoded.opening, torch.zeros_like(d.encoded.prompt)),
            d.view,
            d.refused,
            d.completions,
            d.folds,
        )
        for d in splits
    ]
    print(
        f"the best setting with the prompt blanked out (no prompt, product or cosine features): "
        f"{hybrid_accuracy(blind, chosen):.1%}"
    )
    if args.nested:
        print(f"nested estimate of the chosen hybrid: {nested(data, settings, args.folds - 1):.1%}")


if __name__ == "__main__":
    main()
