"""Render a template version to PDF: validated variables, sandboxed Jinja2, WeasyPrint, deterministic bytes.

Safety: user text is only ever data in the context, never template source; the Jinja2 sandbox is immutable,
autoescaping and strict about undefined names; WeasyPrint may read only the files in the template's own folder
(fonts, images) and `data:` URLs, so nothing in a template or a variable can make the renderer reach the
network or the rest of the file system.

Speed: compiled templates are kept per content hash; finished PDFs are cached by (template content hash,
canonical context hash), so an unchanged document is never rendered twice, and concurrent requests for the
same document share one render. Rendering runs in worker threads, a few at a time, off the event loop.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jinja2
import jinja2.nodes
import jinja2.runtime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import CSS, HTML
from weasyprint.document import Document
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from dpa_service.core.exceptions import Conflict, DPAError, InvalidInput
from dpa_service.core.registry import country_name

logger = logging.getLogger("dpa_service.rendering")

NO_ASSETS_URL = "file:///nonexistent/dpa-template-assets/"


class TemplateSourceError(ValueError):
    """The template text is not valid Jinja2."""


class TemplateRenderError(Conflict):
    """A template failed while rendering (e.g. it used a name the context does not have): the template is at
    fault, not the request, so the document cannot be produced until legal fixes it (409)."""


class TemplateFolderFetcher(URLFetcher):
    """Serve only files inside one folder (fonts, images) and `data:` URLs; refuse everything else."""

    def __init__(self, root: Path | None) -> None:
        super().__init__(timeout=1, allowed_protocols={"file", "data"}, allow_redirects=False)
        self.root = root.resolve() if root else None

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file" and self.root is not None:
            path = Path(url2pathname(urlsplit(url).path)).resolve()
            if path.is_relative_to(self.root) and path.is_file():
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": content_type})
        logger.warning("refused to fetch %r while rendering a PDF", url[:200])
        raise ValueError("this URL is outside the template's folder")


class MissingVariable(jinja2.UndefinedError):
    """The template used a variable the document's variables do not have; `path` names it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is used by the template but missing")
        self.path = path


class _Tracked(dict[str, Any]):
    """The document's variables, each mapping knowing its dotted path, so a missing one can be named."""

    __slots__ = ("_dpa_path",)  # underscore: the sandbox never shows it to a template
    _dpa_path: str


def _track(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        tracked = _Tracked({key: _track(item, f"{path}.{key}") for key, item in value.items()})
        tracked._dpa_path = path
        return tracked
    if isinstance(value, list):
        return [_track(item, f"{path}.{index}") for index, item in enumerate(value)]
    return value


class _NamingUndefined(jinja2.StrictUndefined):
    """StrictUndefined that names a missing variable by its path (`variables.controller.legal_name`)."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        owner, name = self._undefined_obj, self._undefined_name
        if isinstance(owner, _Tracked) and isinstance(name, str):
            raise MissingVariable(f"{owner._dpa_path}.{name}")
        return super()._fail_with_undefined_error(*args, **kwargs)


# Jinja binds `__str__`, `__bool__`, `__iter__`, ... to the base class's failing function when the class is made:
# point them at ours.
for _name in dir(jinja2.StrictUndefined):
    if getattr(jinja2.StrictUndefined, _name) is jinja2.Undefined._fail_with_undefined_error:
        setattr(_NamingUndefined, _name, _NamingUndefined._fail_with_undefined_error)


# What a DPA template may do: one self-contained document. No other templates (include, import, extends: the
# loader has none, and a template including itself recursed until the worker died), loops of bounded length, an
# output of bounded size. The render pool's timeout bounds whatever is left.
FORBIDDEN_TAGS: dict[type[jinja2.nodes.Node], str] = {
    jinja2.nodes.Include: "include",
    jinja2.nodes.Import: "import",
    jinja2.nodes.FromImport: "from ... import",
    jinja2.nodes.Extends: "extends",
}
MAX_RANGE = 10_000  # one range(): a DPA lists dozens of things, not ten thousand
MAX_ITERATIONS = 100_000  # all range() calls of one render together (a loop nested in another counts each time)
MAX_OUTPUT_CHARS = 20_000_000  # the rendered HTML (the shipped DPA is about 100,000 characters)
MAX_REPEAT = 1_000_000  # `"x" * n`, `[..] * n`: the longest text or list a multiplication may build
MAX_EXPONENT = 1_000

_iterations: contextvars.ContextVar[list[int]] = contextvars.ContextVar("dpa_render_iterations")


class RenderLimitExceeded(jinja2.exceptions.SecurityError):
    """A template went past one of the bounds above."""


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimitExceeded(f"range() of {len(numbers)} numbers: at most {MAX_RANGE}")
    budget = _iterations.get(None)
    if budget is not None:
        budget[0] += len(numbers)
        if budget[0] > MAX_ITERATIONS:
            raise RenderLimitExceeded(f"the template's loops ran more than {MAX_ITERATIONS} times")
    return numbers


class DocumentSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the bounds above on range(), `*` and `**`."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise RenderLimitExceeded(f"an exponent above {MAX_EXPONENT}")
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                if isinstance(sized, str | list | tuple) and isinstance(times, int) and len(sized) * times > MAX_REPEAT:
                    raise RenderLimitExceeded(f"a repetition longer than {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


def forbidden_tags(template: jinja2.nodes.Template) -> list[str]:
    """The tags a DPA template may not use that `template` (parsed) does, and range() calls with a constant
    argument beyond MAX_RANGE, as messages."""
    found = [
        f"line {node.lineno}: {{% {tag} %}} is not allowed (a DPA template is one self-contained document)"
        for node in template.find_all(tuple(FORBIDDEN_TAGS))
        for kind, tag in FORBIDDEN_TAGS.items()
        if type(node) is kind
    ]
    for call in template.find_all(jinja2.nodes.Call):
        if isinstance(call.node, jinja2.nodes.Name) and call.node.name == "range":
            constants = [arg.value for arg in call.args if isinstance(arg, jinja2.nodes.Const)]
            if len(constants) == len(call.args) and all(isinstance(value, int) for value in constants):
                try:
                    length = len(range(*constants))
                except (TypeError, ValueError):
                    continue
                if length > MAX_RANGE:
                    found.append(f"line {call.lineno}: range() of {length} numbers (at most {MAX_RANGE})")
    return found


def _environment(entrypoint: str, source: str) -> ImmutableSandboxedEnvironment:
    env = DocumentSandbox(
        loader=jinja2.DictLoader({entrypoint: source}),
        autoescape=True,
        undefined=_NamingUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["country_name"] = country_name
    env.globals["range"] = _bounded_range
    return env


@lru_cache(maxsize=32)
def compiled_template(sha256: str, entrypoint: str, source: str) -> jinja2.Template:
    """Compile once per content hash (`sha256` is part of the cache key, `source` its content)."""
    check_source(entrypoint, source)  # a version stored before these checks existed is held to them too
    try:
        return _environment(entrypoint, source).get_template(entrypoint)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSourceError(f"line {exc.lineno}: {exc.message}") from exc


def check_source(entrypoint: str, source: str) -> None:
    """Raise TemplateSourceError if `source` does not compile or uses what a DPA template may not."""
    try:
        parsed = _environment(entrypoint, source).parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSourceError(f"line {exc.lineno}: {exc.message}") from exc
    except RecursionError as exc:  # brackets nested thousands deep
        raise TemplateSourceError("it nests too deeply to be read") from exc
    if problems := forbidden_tags(parsed):
        raise TemplateSourceError("; ".join(problems))


def render_bounded(template: jinja2.Template, context: dict[str, Any]) -> str:
    """`template.render(context)` (the same text, byte for byte) within MAX_ITERATIONS and MAX_OUTPUT_CHARS."""
    token = _iterations.set([0])
    try:
        parts: list[str] = []
        size = 0
        for part in template.generate(context):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimitExceeded(f"the document grew past {MAX_OUTPUT_CHARS} characters")
            parts.append(part)
        return "".join(parts)
    except RecursionError as exc:  # a macro that calls itself
        raise RenderLimitExceeded("the template recursed too deeply") from exc
    finally:
        _iterations.reset(token)


@dataclass(frozen=True)
class RenderJob:
    template_sha256: str
    entrypoint: str
    source: str
    stylesheet: str
    assets: Path | None
    context: dict[str, Any]

    @property
    def cache_key(self) -> str:
        canonical = json.dumps(self.context, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(f"{self.template_sha256}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    sha256: str
    cached: bool = False


def render_html(job: RenderJob) -> str:
    try:
        template = compiled_template(job.template_sha256, job.entrypoint, job.source)
    except TemplateSourceError as exc:  # stored before today's checks: legal must fix it
        raise TemplateRenderError(f"the template cannot be used: {exc}") from exc
    context = job.context
    if isinstance(context.get("variables"), dict):
        context = {**context, "variables": _track(context["variables"], "variables")}
    try:
        return render_bounded(template, context)
    except MissingVariable as exc:
        raise InvalidInput.field(exc.path, "is used by the template but missing: add it to the variables") from exc
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"the template used something the document does not have: {exc.message}") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateRenderError(f"the template tried something unsafe: {exc}") from exc
    except DPAError:
        raise
    except (ArithmeticError, LookupError, TypeError, ValueError, jinja2.TemplateError) as exc:
        # `{{ 1 / 0 }}`, a filter given the wrong type, a template that is not ours to load: the template's fault.
        raise TemplateRenderError(f"the template failed: {type(exc).__name__}: {exc}") from exc


def html_to_pdf(html: str, stylesheet: str, assets: Path | None) -> bytes:
    """WeasyPrint with the folder-bound fetcher. Blocking and CPU-bound: call it from a worker thread."""
    return layout(html, stylesheet, assets).write_pdf()


def layout(html: str, stylesheet: str, assets: Path | None) -> Document:
    """Lay out one HTML document. The template's @font-face rules only apply through a shared FontConfiguration."""
    fetcher = TemplateFolderFetcher(assets)
    base_url = assets.resolve().as_uri() + "/" if assets else NO_ASSETS_URL
    fonts = FontConfiguration()
    stylesheets = (
        [CSS(string=stylesheet, base_url=base_url, url_fetcher=fetcher, font_config=fonts)] if stylesheet else []
    )
    return HTML(string=html, base_url=base_url, url_fetcher=fetcher).render(stylesheets=stylesheets, font_config=fonts)


def render_sync(job: RenderJob) -> bytes:
    return html_to_pdf(render_html(job), job.stylesheet, job.assets)


def render_pdf(job: RenderJob) -> RenderedPdf:
    """The PDF and its SHA-256, both computed in the worker (the event loop only receives them)."""
    content = render_sync(job)
    return RenderedPdf(content, hashlib.sha256(content).hexdigest())
