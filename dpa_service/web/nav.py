"""The navigation each role sees. One table, so a page a role cannot open is never offered to it."""

from __future__ import annotations

from dataclasses import dataclass

from dpa_service.core.identity import Principal, Role

SUBSCRIBER = (Role.OWNER, Role.ADMIN, Role.MEMBER)
SUBSCRIBER_ADMIN = (Role.OWNER, Role.ADMIN)


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    current: bool


_ITEMS: tuple[tuple[str, str, tuple[Role, ...]], ...] = (
    ("Dashboard", "/app/", SUBSCRIBER),
    ("Agreements", "/app/agreements", SUBSCRIBER),
    ("Obligations", "/app/obligations", SUBSCRIBER),
    ("Breach notices", "/app/breach-notices", SUBSCRIBER),
    ("Inquiries", "/app/inquiries", SUBSCRIBER),
    ("Assistance", "/app/assistance", SUBSCRIBER),
    ("Sub-processors", "/app/subprocessors", SUBSCRIBER),
    ("Transfers", "/app/transfers", SUBSCRIBER),
    ("Contracts", "/app/contracts", SUBSCRIBER),
    ("Organisation", "/app/profile", SUBSCRIBER),
    ("Users and keys", "/app/users", SUBSCRIBER),
    ("Webhooks", "/app/webhooks", SUBSCRIBER_ADMIN),
    ("Overview", "/staff/", (Role.LEGAL, Role.PLATFORM_ADMIN)),
    ("Templates", "/staff/templates", (Role.LEGAL,)),
    ("Review queue", "/staff/reviews", (Role.LEGAL,)),
    ("Countersign", "/staff/countersign", (Role.LEGAL,)),
    ("Obligations", "/staff/obligations", (Role.LEGAL,)),
    ("Breach notices", "/staff/breach-notices", (Role.LEGAL,)),
    ("Inquiries", "/staff/inquiries", (Role.LEGAL,)),
    ("Assistance", "/staff/assistance", (Role.LEGAL,)),
    ("Sub-processor changes", "/staff/subprocessor-changes", (Role.LEGAL,)),
    ("Mechanisms", "/staff/mechanisms", (Role.LEGAL,)),
    ("Campaigns", "/staff/campaigns", (Role.LEGAL,)),
    ("Tenants", "/staff/tenants", (Role.LEGAL, Role.PLATFORM_ADMIN)),
    ("DPA status", "/staff/sales", (Role.SALES, Role.LEGAL)),
    ("Contracts", "/staff/contracts", (Role.SALES, Role.LEGAL)),
    ("API keys", "/staff/keys", (Role.LEGAL, Role.SALES, Role.PLATFORM_ADMIN)),
)
# Pages without a nav entry of their own light up the section they belong to (the ledger links to them).
_SECTIONS = {
    "/app/records": "/app/obligations",
    "/app/exit": "/app/obligations",
    "/staff/records": "/staff/obligations",
    "/staff/exit": "/staff/obligations",
}


def navigation(principal: Principal | None, path: str) -> list[NavItem]:
    if principal is None:
        return []
    items = [(label, href) for label, href, roles in _ITEMS if principal.role in roles]
    # The longest matching prefix is the current section ("/app/" must not light up on every /app page).
    here = path.rstrip("/")
    for prefix, section in _SECTIONS.items():
        if here == prefix or here.startswith(prefix + "/"):
            here = section
    best = max((href for _, href in items if here == href.rstrip("/") or here.startswith(href.rstrip("/") + "/")),
               key=len, default=None)  # fmt: skip
    return [NavItem(label, href, href == best) for label, href in items]
