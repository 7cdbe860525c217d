"""``flashloan reasons``: every reason code with its one meaning, as docs/reasons.md lists it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

KIND_HEADINGS = {
    "adverse": ("Features that counted against the applicant (declines)",
                "A feature's adverse code: cited when it raised the risk."),
    "favourable": ("Features that counted for the applicant (approvals)",
                   "A feature's favourable code, the adverse code with `F`: cited only when "
                   "the applicant is better on it than the reference of approved applicants. "
                   "A feature whose good side is only the absence of something adverse (no "
                   "listing, nothing overdue) has none."),
    "rule": ("Policy rules", "Knock-outs, the PD cut-off and the line minimum; a decline cites "
             "the rules that fired first."),
    "line": ("What set a partial approval's line", "Given when the line granted is below the "
             "amount asked for."),
    "review": ("Changes on review", "Given when a risk officer overturned or amended a "
               "decision."),
}


def catalogue_markdown(served: dict[str, Any]) -> str:
    """Return the reason catalogue as docs/reasons.md holds it."""
    lines = [
        "# Reason codes",
        "",
        "Every code a decision, a partial approval or a review can carry, each with one "
        "meaning. Generated from the feature spec (`scoring/features.json`), the policy "
        f"(`scoring/policies/{served['policy_version']}.json`) and the service's own codes by "
        "`flashloan reasons --out docs/reasons.md`; `GET /v1/reasons` serves the same list, "
        "and a test keeps the three in step.",
        "",
        f"Spec {served['spec_version']}, policy {served['policy_version']}. *Can act*: whether "
        "the applicant can change it now (pay down cards, close loans, clear an overdue "
        "payment, settle enforcement, ask for less, choose another term or purpose); a "
        "decline whose reasons the applicant can act on comes with suggestions checked by "
        "deciding the changed application again.",
    ]
    for kind, (heading, intro) in KIND_HEADINGS.items():
        items = [e for e in served["items"] if e["kind"] == kind]
        if not items:
            continue
        lines += ["", f"## {heading}", "", intro, "",
                  "| Code | 中文 | English | About | Can act |", "|---|---|---|---|---|"]
        for e in items:
            about = e["feature"] or e["rule"] or ""
            about = f"`{about}`" if about else ""
            if e["group"] and kind != "review":
                about = f"{about} ({e['group']})" if about else e["group"]
            cells = [f"`{e['code']}`", e["text_zh"], e["text_en"], about,
                     "yes" if e["actionable"] else "no"]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the Markdown here (default: print it)")
def reasons(out: Path | None) -> None:
    """List every reason code with its texts, as Markdown."""
    from scoring.governance.catalogue import reasons_served
    from scoring.online.engine import DecisionEngine
    from scoring.online.model import load_model
    from scoring.online.policy import load_policy

    text = catalogue_markdown(reasons_served(DecisionEngine(load_model(), load_policy())))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")
