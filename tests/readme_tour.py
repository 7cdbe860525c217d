"""The README's walk-through: its shell block, its applicant and the decision it shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
# The decision's fields that the block's comment states, as JSON text.
PROMISED_FIELDS = ("status", "credit_limit", "annual_rate", "grade", "score")


@dataclass(frozen=True, slots=True)
class Tour:
    """The shell block, and what it applies for and expects back."""

    block: str
    national_id: str
    amount: float
    term_months: int
    purpose: str
    promised: dict[str, str]  # field -> its JSON text in the answer, e.g. "grade" -> '"A"'


def read_tour(readme: Path = README) -> Tour:
    """Find the one ``sh`` block that serves and applies; read its applicant and promise."""
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", readme.read_text(encoding="utf-8"),
                                    flags=re.S)
              if "make serve" in b and "/v1/applications" in b]
    assert len(blocks) == 1, f"expected one walk-through block in {readme}; got {len(blocks)}"
    block = blocks[0]
    ids = set(re.findall(r'"national_id": "(\d{17}[\dX])"', block))
    assert len(ids) == 1, f"the consent and the application must name one applicant: {ids}"
    request = re.search(r'"amount": (\d+), "term_months": (\d+),\s*"purpose": "(\w+)"', block)
    assert request, "the application's request is not in the block"
    comments = "\n".join(_answer_comment(block.splitlines()))
    promised = dict(re.findall(r'"(' + "|".join(PROMISED_FIELDS) + r')": ("[^"]*"|[\d.]+)',
                               comments))
    assert set(promised) == set(PROMISED_FIELDS), f"the block's comment promises {promised}"
    return Tour(block, ids.pop(), float(request[1]), int(request[2]), request[3], promised)


def _answer_comment(lines: list[str]) -> list[str]:
    """The comment lines that show the application's answer (they start at its id)."""
    shown: list[str] = []
    for line in lines:
        if line.lstrip().startswith("#") and (shown or '"application_id"' in line):
            shown.append(line)
        elif shown:
            break
    return shown
