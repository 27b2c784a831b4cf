"""The short edition of the shipped standard DPA that most tests' databases hold instead of the full one.

Rendering the full DPA (18 pages) took about 1.1 s of CPU on the CI machine, and a test that takes an agreement to
"executed" renders it twice (the draft its signer is shown, then the executed copy): those renders were about 45% of
the whole suite's CPU, which had pushed CI past its 10 minutes on 2 cores. Most tests only need *an* executed DPA
of key standard-dpa: its states, evidence, certificate, seal, events and reactions. The short edition is derived
from the shipped file at run time, so what it keeps cannot drift: the same variables schema, sample, stylesheet
(fonts, page numbers, signature block) and obligations; the parties, Clause 12 (transfers), Clause 18 (custom
clauses), the signatures and Annex III (sub-processors). It cuts the other clauses and Annexes I and II: mostly
fixed text, but Clause 1 (the processor's trading name), Clause 9 (the obligations table), Clause 15 (governing law)
and Annex I (the processing description) are built from the variables too, and are rendered with the shipped
template by tests/templates/test_rendering.py and the `shipped_dpa` tests. It renders in 7 pages, about 3x faster.

Tests of the DPA's own text and layout are marked `shipped_dpa` and get the shipped template, unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from functools import cache

from dpa_service.template_versions.bundle import TemplateBundle, shipped_bundles

KEY = "standard-dpa"
KEPT_CLAUSES = {"12", "18"}  # international transfers, custom clauses: both built from the request's variables
DROPPED_ANNEXES = ("Annex I —", "Annex II —")  # the processing description table, the security measures
SECTION = re.compile(r'<section class="[^"]*">.*?</section>', re.S)
CLAUSE_NUMBER = re.compile(r'<span class="num">(\d+)\.</span>')


def shortened(source: str) -> str:
    """The template source without the fixed clauses and Annexes I and II."""

    def keep_or_cut(section: re.Match[str]) -> str:
        text = section.group(0)
        number = CLAUSE_NUMBER.search(text)
        if number and number.group(1) not in KEPT_CLAUSES:
            return ""
        if any(f'class="annex-title">{title}' in text for title in DROPPED_ANNEXES):
            return ""
        return text

    short = SECTION.sub(keep_or_cut, source)
    assert short != source, "the shipped template's sections changed shape: update tests/helpers/short_dpa.py"
    return short


@cache
def short_standard_dpa() -> TemplateBundle:
    shipped = next(bundle for bundle in shipped_bundles() if bundle.key == KEY)
    return dataclasses.replace(shipped, source=shortened(shipped.source))
