"""Two template versions side by side: what a reader of each version's DPA sees, line against line.

Both versions are rendered with their own sample variables through the preview's rendering (HTML, before layout),
reduced to their visible text one line per block (`documents.text`), and compared with difflib. Comparing the
rendered text rather than the Jinja source keeps markup and template logic out of legal's diff; long unchanged
stretches are folded to a few lines of context around each change.
"""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass

from dpa_service.core.db import Database
from dpa_service.core.identity import Principal
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import RenderJob, render_html
from dpa_service.documents.text import visible_text
from dpa_service.template_versions.models import TemplateVersion
from dpa_service.template_versions.services import preview_job, visible_versions

CONTEXT = 2  # unchanged lines kept on each side of a change


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side view. `kind`: same, changed (both sides differ), removed (old only), added (new
    only), or folded (`old` then says how many unchanged lines are hidden)."""

    kind: str
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class Comparison:
    old: TemplateVersion
    new: TemplateVersion
    rows: list[Row]

    @property
    def changed(self) -> int:
        return sum(1 for row in self.rows if row.kind in ("changed", "removed", "added"))


async def compare(
    db: Database, renderer: Renderer, principal: Principal, template_id: uuid.UUID, against: uuid.UUID
) -> Comparison:
    """`against` (the older text, left) compared with `template_id` (the newer, right)."""
    old, new = await visible_versions(db, principal, against, template_id)
    rows = await renderer.run(side_by_side, preview_job(old), preview_job(new))
    return Comparison(old, new, rows)


def side_by_side(old_job: RenderJob, new_job: RenderJob) -> list[Row]:
    """Render both and pair their lines (CPU work: runs in the pool)."""
    old, new = visible_text(render_html(old_job)), visible_text(render_html(new_job))
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += _folded([Row("same", line, line) for line in old[i1:i2]], first=i1 == 0, last=i2 == len(old))
            continue
        left, right = old[i1:i2], new[j1:j2]
        for index in range(max(len(left), len(right))):
            if index < len(left) and index < len(right):
                rows.append(Row("changed", left[index], right[index]))
            elif index < len(left):
                rows.append(Row("removed", old=left[index]))
            else:
                rows.append(Row("added", new=right[index]))
    return rows


def _folded(same: list[Row], *, first: bool, last: bool) -> list[Row]:
    """An unchanged stretch with only the lines next to a change kept."""
    head = [] if first else same[:CONTEXT]
    tail = [] if last else same[-CONTEXT:]
    if len(same) <= len(head) + len(tail) + 1:
        return same
    hidden = len(same) - len(head) - len(tail)
    return [*head, Row("folded", f"{hidden} unchanged lines", f"{hidden} unchanged lines"), *tail]
