"""What the deploy files' PromQL reads, and what the code exports, to check the one against the other."""

import re

from prometheus_client import CollectorRegistry

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    }
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, aggregations,
    keywords, label names or parts of label matchers, ranges and strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def registry_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry exposes. Each collector's describe() gives its families without touching
    what they read (the database, CUDA); the collectors that describe nothing are collected."""
    names: set[str] = set()
    collectors = list(registry._collector_to_names)  # no public accessor for a registry's collectors
    for collector in collectors:
        describe = getattr(collector, "describe", None)
        for family in (list(describe()) if describe else []) or list(collector.collect()):
            names |= {sample.name for sample in family.samples}
            names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


def exported_names() -> set[str]:
    """What the API (service.metrics) and the workers (workers.metrics) export, plus Prometheus' own `up`."""
    from service import metrics as api_metrics
    from workers import metrics as worker_metrics

    return registry_names(api_metrics.REGISTRY) | registry_names(worker_metrics.REGISTRY) | {"up"}
