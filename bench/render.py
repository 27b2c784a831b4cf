"""Render time of the shipped DPA: bare WeasyPrint vs the service's render vs a cached re-render.

    .venv/bin/python bench/render.py [--runs 5]

bare:    WeasyPrint alone on the already-rendered HTML and CSS (same fonts), default URL fetcher (the floor).
service: variables validation + context + Jinja2 + WeasyPrint with the folder-bound fetcher, no cache
         (each run a new document reference, so nothing is reused).
cached:  the same document asked for again (Renderer cache).
Goals: service <= 1.15x bare; cached >= 20x faster than a fresh service render.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import date

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import render_html
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.template_versions.context import build_context
from dpa_service.template_versions.models import TemplateVersion
from dpa_service.template_versions.services import render_job
from dpa_service.template_versions.variables import validate_variables


def version_of_shipped() -> TemplateVersion:
    return next(b for b in shipped_bundles() if b.key == "standard-dpa").as_version()


def job(version: TemplateVersion, reference: str):
    validate_variables(version.variables_schema, version.sample_variables)
    context = build_context(
        version, version.sample_variables, reference=reference, status="draft", generated_on=date(2026, 11, 29)
    )
    return render_job(version, context)


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    version = version_of_shipped()
    first = job(version, "BENCH-0")
    html = render_html(first)
    base_url = first.assets.resolve().as_uri() + "/"

    def bare() -> None:
        # Same HTML, same stylesheet and fonts (which need a shared FontConfiguration), default URL fetcher.
        fonts = FontConfiguration()
        sheet = CSS(string=first.stylesheet, base_url=base_url, font_config=fonts)
        HTML(string=html, base_url=base_url).write_pdf(stylesheets=[sheet], font_config=fonts)

    counter = iter(range(1, 10_000))

    async def service_once(renderer: Renderer, reference: str) -> None:
        await renderer.render(job(version, reference))

    loop = asyncio.new_event_loop()
    renderer = Renderer()

    def service() -> None:
        loop.run_until_complete(service_once(renderer, f"BENCH-{next(counter)}"))

    def cached() -> None:
        loop.run_until_complete(service_once(renderer, "BENCH-CACHED"))

    bare()  # warm-up: fonts, caches, imports
    service()
    cached()
    # Interleave so that machine noise hits both the same way.
    bare_times, service_times = [], []
    for _ in range(runs):
        bare_times += timed(bare, 1)
        service_times += timed(service, 1)
    cached_times = timed(cached, runs * 20)
    b, s, c = (statistics.median(x) for x in (bare_times, service_times, cached_times))
    print(f"runs: {runs} (cached: {runs * 20}); medians")
    print(f"bare WeasyPrint:      {b * 1000:8.1f} ms")
    print(f"service render:       {s * 1000:8.1f} ms   {s / b:.2f}x bare (goal <= 1.15)")
    print(f"cached re-render:     {c * 1000:8.3f} ms   {s / c:,.0f}x faster than a fresh render (goal >= 20)")


if __name__ == "__main__":
    main()
