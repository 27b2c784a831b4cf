"""The executed PDF reads as one document: the agreement keeps the page numbers its signer saw, the certificate's
pages say they are the certificate's, and no table row is cut in two by a page break."""

from __future__ import annotations

import io
import re
from importlib import resources

import pytest
from pypdf import PdfReader

from dpa_service.core.db import Database
from dpa_service.template_versions.bundle import shipped_bundles
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.templates.conftest import squash


@pytest.mark.shipped_dpa  # the page numbers of the agreement as legal ships it
async def test_the_certificate_pages_are_labelled_as_such_after_the_agreement(admin: Api, db: Database) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    executed = await to_status(owner, legal, "executed")
    document = await owner.get(f"/agreements/{executed['id']}/document")
    assert document.status_code == 200
    pages = [squash(page.extract_text() or "") for page in PdfReader(io.BytesIO(document.content)).pages]

    agreement_pages = [i for i, text in enumerate(pages) if re.search(r"(?<!Certificate)Page\d+of\d+", text)]
    certificate_pages = [i for i, text in enumerate(pages) if "Certificatepage" in text]
    assert agreement_pages and certificate_pages and len(agreement_pages) + len(certificate_pages) == len(pages)
    dpa_count, cert_count = len(agreement_pages), len(certificate_pages)
    assert agreement_pages == list(range(dpa_count)), "the agreement first, then its certificate"
    for number, index in enumerate(agreement_pages, start=1):
        assert f"Page{number}of{dpa_count}" in pages[index]
    for number, index in enumerate(certificate_pages, start=1):
        assert f"Certificatepage{number}of{cert_count}(afterthe{dpa_count}-pageagreement)" in pages[index]
        assert f"Page{number}of" not in pages[index].replace(f"Certificatepage{number}of", "")


def test_no_table_row_is_split_across_pages_in_the_dpa_or_the_certificate() -> None:
    css = next(b for b in shipped_bundles() if b.key == "standard-dpa").stylesheet
    assert re.search(r"(^|\n)tr \{[^}]*break-inside: avoid", css)
    certificate = (resources.files("dpa_service.agreements") / "certificate.html.j2").read_text()
    assert re.search(r"\btr \{[^}]*break-inside: avoid", certificate)
    assert re.search(r"\.mono \{[^}]*overflow-wrap: anywhere; word-break: break-all", certificate)
    assert re.search(r"\.consent \{[^}]*overflow-wrap: anywhere", certificate)
