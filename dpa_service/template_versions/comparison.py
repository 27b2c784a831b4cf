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
from functools import cached_property

from dpa_service.core.db import Database
from dpa_service.core.identity import Principal
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import RenderJob, render_html
from dpa_service.documents.text import visible_text
from dpa_service.template_versions.models import DiffChange, TemplateDiff, TemplateVersion
from dpa_service.template_versions.services import current_ids_for, preview_job, public, visible_versions

CONTEXT = 2  # unchanged lines kept on each side of a change
CHANGE_KINDS = ("changed", "removed", "added")


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side view. `kind`: same, changed (both sides differ), removed (old only), added (new
    only), or folded (`old` then says how many unchanged lines are hidden)."""

    kind: str
    old: str = ""
    new: str = ""
    old_line: int | None = None  # 1-based line numbers in each version's visible text (None: no line on that side)
    new_line: int | None = None


@dataclass(frozen=True)
class Comparison:
    old: TemplateVersion
    new: TemplateVersion
    old_text: list[str]
    new_text: list[str]

    @cached_property
    def rows(self) -> list[Row]:
        return side_by_side(self.old_text, self.new_text)

    def unified(self) -> str:
        """The same comparison as a unified diff with three lines of context (for a terminal or a review tool)."""
        lines = difflib.unified_diff(
            self.old_text,
            self.new_text,
            fromfile=f"{self.old.key} v{self.old.version}",
            tofile=f"{self.new.key} v{self.new.version}",
            lineterm="",
        )
        return "\n".join(lines)

    @property
    def changed(self) -> int:
        return sum(1 for row in self.rows if row.kind in CHANGE_KINDS)


async def compare(
    db: Database, renderer: Renderer, principal: Principal, template_id: uuid.UUID, against: uuid.UUID
) -> Comparison:
    """`against` (the older text, left) compared with `template_id` (the newer, right)."""
    old, new = await visible_versions(db, principal, against, template_id)
    old_text, new_text = await renderer.run(visible_texts, preview_job(old), preview_job(new))
    return Comparison(old, new, old_text, new_text)


def visible_texts(old_job: RenderJob, new_job: RenderJob) -> tuple[list[str], list[str]]:
    """Render both and reduce each to its visible lines (CPU work: runs in the pool)."""
    return visible_text(render_html(old_job)), visible_text(render_html(new_job))


def side_by_side(old: list[str], new: list[str]) -> list[Row]:
    """Pair the two texts' lines, folding long unchanged stretches."""
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            same = [Row("same", line, line, i1 + k + 1, j1 + k + 1) for k, line in enumerate(old[i1:i2])]
            rows += _folded(same, first=i1 == 0, last=i2 == len(old))
            continue
        left, right = old[i1:i2], new[j1:j2]
        for index in range(max(len(left), len(right))):
            if index < len(left) and index < len(right):
                rows.append(Row("changed", left[index], right[index], i1 + index + 1, j1 + index + 1))
            elif index < len(left):
                rows.append(Row("removed", old=left[index], old_line=i1 + index + 1))
            else:
                rows.append(Row("added", new=right[index], new_line=j1 + index + 1))
    return rows


def _folded(same: list[Row], *, first: bool, last: bool) -> list[Row]:
    """An unchanged stretch with only the lines next to a change kept."""
    head = [] if first else same[:CONTEXT]
    tail = [] if last else same[-CONTEXT:]
    if len(same) <= len(head) + len(tail) + 1:
        return same
    hidden = len(same) - len(head) - len(tail)
    return [*head, Row("folded", f"{hidden} unchanged lines", f"{hidden} unchanged lines"), *tail]


async def diff(
    db: Database, renderer: Renderer, principal: Principal, template_id: uuid.UUID, against: uuid.UUID
) -> TemplateDiff:
    """The JSON form of `compare`: every changed line with its line numbers, and the unified diff."""
    compared = await compare(db, renderer, principal, template_id, against)
    current = await current_ids_for(db, principal.scope, {compared.old.key, compared.new.key})
    changes = [
        DiffChange(
            kind=row.kind,
            old=row.old if row.old_line is not None else None,
            new=row.new if row.new_line is not None else None,
            old_line=row.old_line,
            new_line=row.new_line,
        )
        for row in compared.rows
        if row.kind in CHANGE_KINDS
    ]
    return TemplateDiff(
        from_=public(compared.old, current),
        to=public(compared.new, current),
        changed=len(changes),
        changes=changes,
        unified=compared.unified(),
    )
