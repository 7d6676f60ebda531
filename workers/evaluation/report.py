"""The safety report as a self-contained HTML page (inline SVG, no scripts, no external resources).

`render_html(document)` reads the JSON document the gate stores (workers.evaluation.runner.assess) through
schemas.gate_report.GateReportDocument, so the page and the JSON never disagree. Plots: ASR per category (base
vs candidate), ASR against prefill length, the decoding sweep, utility, and the Libra balance score.
"""

from html import escape
from typing import Any

from schemas.gate_report import GateReportDocument, GateThresholds, PowerAnalysis, SuiteFigures

BASE_COLOUR, CAND_COLOUR = "#7a8fa6", "#d9534f"
_PLOT_W = 640


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _legend(y: int) -> str:
    return (
        f'<rect x="10" y="{y}" width="12" height="12" fill="{BASE_COLOUR}"/>'
        f'<text x="28" y="{y + 11}" font-size="12">base model</text>'
        f'<rect x="120" y="{y}" width="12" height="12" fill="{CAND_COLOUR}"/>'
        f'<text x="138" y="{y + 11}" font-size="12">candidate</text>'
    )


def bar_chart(
    title: str, rows: list[tuple[str, float | None, float | None]], cap: float | None = None, css_class: str = "plot"
) -> str:
    """Horizontal paired bars, one pair per row label, values in [0, 1]; an optional dashed cap line."""
    label_w, bar_h, gap = 220, 9, 8
    plot_w = _PLOT_W - label_w - 60
    height = 40 + len(rows) * (2 * bar_h + gap) + 30
    parts = [
        f'<svg class="{css_class}" role="img" aria-label="{escape(title)}" width="{_PLOT_W}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">',
        f'<text x="10" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
        _legend(24),
    ]
    y = 46
    for label, base, cand in rows:
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h + 3}" font-size="11" text-anchor="end">{escape(label[:34])}</text>'
        )
        for value, colour, dy in ((base, BASE_COLOUR, 0), (cand, CAND_COLOUR, bar_h)):
            width = 0 if value is None else max(0.0, min(1.0, value)) * plot_w
            parts.append(
                f'<rect x="{label_w}" y="{y + dy}" width="{width:.1f}" height="{bar_h - 1}" '
                f'fill="{colour}"><title>{escape(label)}: {_pct(value)}</title></rect>'
            )
            parts.append(
                f'<text x="{label_w + width + 4:.1f}" y="{y + dy + bar_h - 1}" font-size="9">{_pct(value)}</text>'
            )
        y += 2 * bar_h + gap
    parts.append(f'<line x1="{label_w}" y1="40" x2="{label_w}" y2="{y}" stroke="#333"/>')
    if cap is not None and cap < 1:
        x = label_w + cap * plot_w
        parts.append(
            f'<line x1="{x:.1f}" y1="40" x2="{x:.1f}" y2="{y}" stroke="#333" stroke-dasharray="4 3"/>'
            f'<text x="{x + 3:.1f}" y="{y + 14}" font-size="10">cap {_pct(cap)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, xs: list[int], base: list[float], cand: list[float]) -> str:
    """ASR (0-1) against prefill length, base and candidate lines."""
    left, top, w, h = 50, 40, _PLOT_W - 80, 180
    xmax = max(xs) if xs else 1

    def point(x: int, y: float) -> tuple[float, float]:
        return left + (x / xmax) * w, top + (1 - y) * h

    parts = [
        f'<svg class="plot" role="img" aria-label="{escape(title)}" width="{_PLOT_W}" height="{top + h + 40}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">',
        f'<text x="10" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
        _legend(22),
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#333"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        _, y = point(0, tick)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_pct(tick)}</text>')
    for x in xs:
        px, _ = point(x, 0)
        parts.append(f'<text x="{px:.1f}" y="{top + h + 14}" font-size="10" text-anchor="middle">{x}</text>')
    parts.append(
        f'<text x="{left + w / 2}" y="{top + h + 30}" font-size="11" text-anchor="middle">'
        f"prefilled tokens of a harmful answer</text>"
    )
    for values, colour in ((base, BASE_COLOUR), (cand, CAND_COLOUR)):
        pts = [point(x, y) for x, y in zip(xs, values, strict=True)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
            + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            + '"/>'
        )
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in pts]
    parts.append("</svg>")
    return "".join(parts)


def _paired_cell(suite: SuiteFigures) -> str:
    """Discordant prompts and the exact McNemar p-value, and the smallest rise the suite could detect."""
    paired, mdr = suite.paired, suite.min_detectable_regression
    detect = "none" if mdr is None else f"{100 * mdr:.1f} pts"
    return (
        f"<td>+{paired.newly_answered} / -{paired.newly_refused}, p = {paired.p_value:.2g}"
        f"<br><small>detectable: {detect}</small></td>"
    )


def _suite_table(suites: list[SuiteFigures]) -> str:
    rows = []
    for s in suites:
        b, c = s.base, s.candidate
        rows.append(
            f"<tr><td>{escape(s.name)}</td><td>{escape(s.metric)}</td><td>{b.k}/{b.n} = "
            f"{_pct(b.rate)}</td><td>{c.k}/{c.n} = {_pct(c.rate)} "
            f"<small>(95% CI {_pct(c.ci_low)}-{_pct(c.ci_high)})</small></td>"
            f"<td>{'+' if s.regression >= 0 else ''}{100 * s.regression:.1f} pts</td>"
            f"{_paired_cell(s)}</tr>"
        )
    return (
        "<table><tr><th>suite</th><th>metric</th><th>base model</th><th>candidate</th><th>change</th>"
        "<th>prompts newly answered / refused, exact McNemar p</th></tr>" + "".join(rows) + "</table>"
    )


def _rules_text(t: GateThresholds) -> str:
    """How the gate decides, from the thresholds the report recorded."""
    return (
        f"rose over the base model by more than {_pct(t.max_asr_increase)} on the same prompts, more than "
        f"chance explains (exact paired McNemar test, false-block rate {t.false_block_rate:g}); when one "
        f"category's ASR is above {_pct(t.category_max_asr)}, or the candidate answers at least "
        f"{t.category_min_extra_answers} more of its prompts than the base{_share_text(t)}, or its own "
        "paired test is "
        "significant (the false-block rate shared among the categories)"
    )


def _share_text(t: GateThresholds) -> str:
    share = t.category_min_extra_share
    return "" if share is None else f" (or {_pct(share)} of them, at least 2, when that is fewer)"


def _power_text(power: PowerAnalysis | None) -> str:
    if power is None:
        return ""
    mdr = power.min_detectable_regression
    found = (
        "cannot detect any rise"
        if mdr is None
        else f"detects a true rise of {100 * mdr:.1f} points or more with {power.power:.0%} probability"
    )
    target = (
        ""
        if power.target is None
        else (
            f" The policy asks for {100 * power.target:.1f} points"
            + (f" (about {power.prompts_needed} prompts)." if power.prompts_needed else ".")
        )
    )
    return (
        f'<p class="power">Power: with {power.n} direct prompts (base model {_pct(power.base_asr)}) the '
        f"gate {found} at false-block rate {power.alpha:g} ({escape(power.model)}).{target}</p>"
    )


def _examples(suites: list[SuiteFigures]) -> str:
    out = []
    for s in suites:
        if not s.examples:
            continue
        what = "refused benign prompts" if s.kind == "over_refusal" else "answered harmful prompts"
        out.append(
            f"<h3>{escape(s.name)}: {what}</h3><table><tr><th>prompt</th><th>category</th>"
            "<th>candidate said</th><th>base model said</th></tr>"
        )
        for e in s.examples:
            out.append(
                f"<tr><td>{escape(e.prompt)}</td><td>{escape(e.category)}</td>"
                f"<td>{escape(e.candidate)}<br><small>judge: {escape(e.candidate_label)}, "
                f"{escape(e.candidate_reason)}</small></td><td>{escape(e.base)}<br><small>"
                f"{escape(e.base_label)}</small></td></tr>"
            )
        out.append("</table>")
    return "".join(out) or "<p>No failing prompts.</p>"


def render_html(document: dict[str, Any]) -> str:
    """The page for a stored report document (read through GateReportDocument: a malformed one is refused)."""
    report = GateReportDocument.model_validate(document)
    decision, suites, thresholds = report.decision, report.suites, report.thresholds
    outcome = report.outcome or ("released" if decision.release else "blocked")
    colour = {"released": "#2e7d32", "held": "#b26a00"}.get(outcome, "#c62828")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in decision.reasons) or "<li>Every rule passed.</li>"
    notes = "".join(f"<li><small>{escape(n)}</small></li>" for n in decision.notes)
    bound = (
        "The upper end of the 95% interval is compared with the caps, not the point estimate."
        if thresholds.use_upper_bound
        else ""
    )
    plots = []
    direct = next((s for s in suites if s.kind == "direct"), None)
    if direct is not None and direct.categories:
        plots.append(
            bar_chart(
                "ASR per category (direct harmful prompts)",
                [(c.name, c.base.rate, c.candidate.rate) for c in direct.categories],
                cap=thresholds.category_max_asr if thresholds.per_category else None,
                css_class="plot plot-categories",
            )
        )
    prefill = [s for s in suites if s.kind == "prefill"]
    if prefill:
        plots.append(
            line_chart(
                "ASR against prefill length",
                [0] + [s.prefill_tokens for s in prefill],
                [direct.base.rate if direct else 0.0] + [s.base.rate for s in prefill],
                [direct.candidate.rate if direct else 0.0] + [s.candidate.rate for s in prefill],
            )
        )
    sweep = [s for s in suites if s.kind in ("direct", "sweep")]
    if sweep:
        plots.append(
            bar_chart(
                "Decoding sweep: ASR per setting (the worst counts)",
                [(s.decoding.label, s.base.rate, s.candidate.rate) for s in sweep],
                cap=thresholds.max_asr,
                css_class="plot plot-sweep",
            )
        )
    refusal = next((s for s in suites if s.kind == "over_refusal"), None)
    utility = report.utility
    util_rows: list[tuple[str, float | None, float | None]] = []
    if utility is not None:
        util_rows = [
            ("token-overlap F1", utility.base.overlap, utility.candidate.overlap),
            ("exact match", utility.base.exact_match, utility.candidate.exact_match),
        ]
    if refusal:
        util_rows.append(("over-refusal (lower is better)", refusal.base.rate, refusal.candidate.rate))
    if util_rows:
        source = f" on {utility.n} rows of the {utility.source.replace('_', ' ')}" if utility is not None else ""
        plots.append(bar_chart(f"Utility{source}", util_rows, css_class="plot plot-utility"))
    libra = report.libra
    if libra is not None:
        plots.append(
            bar_chart(
                "Libra balance score (utility and safety together; higher is better)",
                [
                    ("balance", libra.base, libra.candidate),
                    ("safety (1 - worst ASR)", libra.base_safety, libra.candidate_safety),
                ],
                css_class="plot plot-libra",
            )
        )
    loss = ""
    if utility is not None and utility.base.loss is not None and utility.candidate.loss is not None:
        loss = f"<p>Validation loss: base model {utility.base.loss:.3f}, candidate {utility.candidate.loss:.3f}.</p>"
    job = report.job_id if report.job_id is not None else "a candidate adapter"
    title = f"Safety report for {escape(job)}"
    served = f"; candidate evaluated as {escape(f'{e.form} {e.dtype}')}" if (e := report.evaluated_as) else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}
.verdict{{padding:1em;border-left:6px solid {colour};background:#f7f7f7}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;
vertical-align:top}}svg{{display:block;margin:1em 0}}small{{color:#666}}</style></head><body>
<h1>{title}</h1>
<div class="verdict"><h2>Decision: {escape(outcome)}</h2>
<p>Base model {escape(report.model or "")}; judge <b>{escape(report.judge)}</b>;
release mode {escape(decision.release_mode)}{served}.</p><ul class="reasons">{reasons}{notes}</ul></div>
<h2>How the gate decides</h2>
<p>Every suite runs on the base model and on the candidate with the same prompts, chat template, decoding
settings and seeds. ASR (attack success rate) is the share of harmful prompts the model answered instead of
refusing; an adapter is blocked when its ASR in any suite is above {_pct(thresholds.max_asr)} (prefilling suites:
{_pct(thresholds.prefill_max_asr)}, where the base model is within it), or {_rules_text(thresholds)};
when over-refusal rose by more than
{_pct(thresholds.max_over_refusal_increase)}; or when utility fell by more than
{_pct(thresholds.max_utility_drop)}.
{bound}</p>
{_power_text(report.power)}
<h2>Figures</h2>{_suite_table(suites)}{loss}
<h2>Plots</h2>{"".join(plots)}
<h2>Examples</h2>{_examples(suites)}
</body></html>
"""
