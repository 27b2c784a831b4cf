"""`/verify`: anyone holding a PDF asks, without signing in, whether it is one of our executed agreements,
unchanged. The same service as `POST /api/v1/documents/verify` (its size limit, one anonymous check at a time, the
agreement id only for the owning tenant or staff: here the viewer is whoever is signed in to the pages, if anyone).
The path is rate limited (http/rate_limits.py) and the form carries a CSRF token like every other."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.response import Template

from dpa_service.agreements import verification
from dpa_service.core.exceptions import InvalidInput
from dpa_service.http.deps import DbDep, SealDep
from dpa_service.web.auth import viewer
from dpa_service.web.views import field_errors, render

PAGE = "agreements/verify.html.j2"
HEADING = "Verify a PDF"


async def uploaded_pdf(request: Request[Any, Any, Any]) -> bytes:
    """The bytes of the form's `file`: refused beside the field when no file was chosen or it is not a PDF."""
    upload = (await request.form()).get("file")
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    if not content:
        raise InvalidInput.field("file", "choose the PDF file to check")
    if not content.startswith(b"%PDF-"):
        raise InvalidInput.field("file", "is not a PDF file")
    return content


class VerifyPages(Controller):
    include_in_schema = False

    @get("/verify", exclude_from_auth=True)
    async def form(self, request: Request[Any, Any, Any]) -> Template:
        """The upload form."""
        return render(request, PAGE, heading=HEADING, result=None)

    @post("/verify", exclude_from_auth=True, status_code=200)
    async def check(self, request: Request[Any, Any, Any], db: DbDep, seal: SealDep) -> Template:
        """The answer for the uploaded PDF: verified, tampered or unknown, each explained."""
        try:
            content = await uploaded_pdf(request)
            result = await verification.verify(db, seal, content, viewer=viewer(request))
        except InvalidInput as exc:  # the service names the request body; here that is the file field
            errors = {"file" if field == "body" else field: message for field, message in field_errors(exc).items()}
            return render(request, PAGE, status=422, heading=HEADING, result=None, errors=errors)
        return render(request, PAGE, heading=HEADING, result=result)
