"""The legal test suite of the as-of assessment: table-driven, across origins (EU/EEA, UK, Swiss law) and dates.

Each case's id ends with the source it rests on, in brackets: a key of SOURCES, which gives the address (the same
sources registry/*.yaml and docs/legal-sources.md cite). The first block is the original timeline, still holding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest

from dpa_service.transfers.assessment import TransferFacts, assess

D = date

SOURCES = {
    "C-311/18": "https://eucrim.eu/news/eu-us-data-transfers-cjeu-shatters-privacy-shield-schrems-ii",
    "2021/914": "https://www.lexblog.com/2021/09/29/old-eu-sccs-now-repealed/",
    "2021/914-transition": "https://www.mccannfitzgerald.com/knowledge/gdpr/european-commission-adopts-new-sets-of-standard-contractual-clauses",
    "2023/1795": "https://eur-lex.europa.eu/eli/C/2025/6610/oj/eng",
    "C-703/25P": "https://eur-lex.europa.eu/eli/C/2025/6610/oj/eng",
    "ICO-IDTA": "https://privacymatters.dlapiper.com/2022/02/uk-international-data-transfer-agreement-and-addendum-laid-before-parliament/",
    "ICO-legacy-SCC": "https://techgdpr.com/blog/uk-restricted-transfers-standard-data-protection-clauses/",
    "SI-2023/1028": "https://legislation.gov.uk/uksi/2023/1028/data.html",
    "UK-adequacy-regs": "https://handleygill.co.uk/uk-adequacy-regulations",
    "EC-Brexit": "https://ec.europa.eu/info/law/law-topic/data-protection/international-dimension-data-protection/brexit_en",
    "UK-renewal-2025": "https://www.dpocentre.com/news/eu-renews-uk-personal-data-adequacy-decisions",
    "FDPIC-2020-09-08": "https://www.admin.ch/gov/en/start/documentation/media-releases.msg-id-80318.html",
    "FDPIC-SCC-2021": "https://www.homburger.ch/en/insights/switzerland-recognizes-new-eu-standard-contractual-clauses",
    "FDPIC-SCC-transition": "https://tiatira.com/blog/switzerland-recognises-the-eu-standard-contractual-clauses-are-swiss-data-exporters-now-safe-again-data-protection-switzerland-mondaq",
    "CH-DPF-2024": "https://www.walderwyss.com/en/news/2024-08-14_federal-council-swiss-us-data-privacy-framework-in-force-on-15-september-2024",
    "CH-Annex1-DPO": "https://www.bj.admin.ch/bj/en/home/staat/datenschutz/internationales/anerkennung-staaten.html",
    "2019/419": "https://www.legislation.gov.uk/eudn/2019/419/body/2020-01-31",
    "2022/254": "https://cnpd.public.lu/en/actualites/international/2021/12/adequacy-south-korea.html",
    "2002/2": "https://proteuscyber.com/bs/privacy-database/tag/canada-adequacy/commission",
    "2011/61": "https://www.lexology.com/library/detail.aspx?g=2ee34ce9-6d9b-4040-88e1-59024d54f253",
    "2026/179": "https://europalov.no/rettsakt/beskyttelse-av-personopplysninger-ved-datautveksling-med-brasil/id-34841",
    "2025/1382": "https://www.globalpolicywatch.com/2025/07/adequacy-decision-for-the-european-patent-organisation/",
    "TFEU-349-355": "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=LEGISSUM:outermost_regions",
    "WP74": "https://studylib.net/doc/18249905/draft-working-document-on-binding-corporate-rules-for",
    "Dir-95/46-Art26": "http://businessdocbox.com/Government/88156253-Article-29-working-party.html",
    "EDPB-2/2018": "https://www.lexology.com/library/detail.aspx?g=9f0a66e2-621b-4c98-9554-66c87246c56d",
    "EDPB-Rec-01/2020": "https://eucrim.eu/news/eu-us-data-transfers-cjeu-shatters-privacy-shield-schrems-ii",
}


@dataclass(frozen=True)
class Case:
    id: str
    destination: str
    mechanism: str
    start: date
    day: date
    valid: bool
    words: str
    origin: str = "eea"
    instrument: date | None = None
    certified: bool | None = None
    importer: str = ""
    tia: str | None = "TIA-1"
    certification: dict[str, str] | None = None
    systematic: bool = False
    risks: tuple[str, ...] = field(default=())


CHECKED = {"checked_by": "Lee Legal", "checked_on": "2026-11-02", "entry": "Acme Inc., DPF List, active, non-HR"}
EARLY = {**CHECKED, "checked_on": "2016-08-01"}  # for the historic cases: checked before the day assessed

CASES = [
    # -- the original timeline (EU/EEA exports unless the tool is another regime's: then its origin) --
    Case(
        "eea-privacy-shield-in-force-2019[C-311/18]",
        "US",
        "eu-us-privacy-shield",
        D(2018, 1, 1),
        D(2019, 9, 9),
        True,
        "Privacy Shield",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "eea-privacy-shield-invalid-day-after[C-311/18]",
        "US",
        "eu-us-privacy-shield",
        D(2018, 1, 1),
        D(2020, 7, 17),
        False,
        "invalidated on 2020-07-16 (CJEU C-311/18",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "eea-privacy-shield-invalid-judgment-day[C-311/18]",
        "US",
        "eu-us-privacy-shield",
        D(2018, 1, 1),
        D(2020, 7, 16),
        False,
        "C-311/18",
        certified=True,
        certification=EARLY,
    ),
    Case("eea-scc-2010-valid-2021[2021/914-transition]", "US", "scc-2010", D(2019, 1, 1), D(2021, 3, 1), True, "2010"),
    Case(
        "eea-scc-2010-last-day-2022-12-27[2021/914-transition]",
        "US",
        "scc-2010",
        D(2019, 1, 1),
        D(2022, 12, 27),
        True,
        "2010",
    ),
    Case(
        "eea-scc-2010-ended-2022-12-28[2021/914-transition]",
        "US",
        "scc-2010",
        D(2019, 1, 1),
        D(2022, 12, 28),
        False,
        "replaced by 2022-12-27",
    ),
    Case(
        "eea-scc-2010-contract-after-repeal[2021/914]",
        "US",
        "scc-2010",
        D(2021, 10, 1),
        D(2021, 10, 1),
        False,
        "contracts concluded on or after 2021-09-27",
    ),
    Case(
        "eea-dpf-not-yet-2023-07-09[2023/1795]",
        "US",
        "eu-us-dpf",
        D(2023, 1, 1),
        D(2023, 7, 9),
        False,
        "from 2023-07-10",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "eea-dpf-from-2023-07-10[2023/1795]",
        "US",
        "eu-us-dpf",
        D(2023, 1, 1),
        D(2023, 7, 10),
        True,
        "Data Privacy Framework",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "eea-dpf-uncertified-importer[2023/1795]",
        "US",
        "eu-us-dpf",
        D(2023, 1, 1),
        D(2023, 7, 10),
        False,
        "certified",
        certified=False,
    ),
    Case(
        "uk-idta-not-yet-2022-03-20[ICO-IDTA]",
        "US",
        "uk-idta",
        D(2022, 1, 1),
        D(2022, 3, 20),
        False,
        "from 2022-03-21",
        origin="uk",
    ),
    Case(
        "uk-idta-from-2022-03-21[ICO-IDTA]", "US", "uk-idta", D(2022, 1, 1), D(2022, 3, 21), True, "IDTA", origin="uk"
    ),
    Case(
        "ch-swiss-dpf-not-yet-2024-09-14[CH-DPF-2024]",
        "US",
        "swiss-us-dpf",
        D(2024, 1, 1),
        D(2024, 9, 14),
        False,
        "from 2024-09-15",
        origin="ch",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "ch-swiss-dpf-from-2024-09-15[CH-DPF-2024]",
        "US",
        "swiss-us-dpf",
        D(2024, 1, 1),
        D(2024, 9, 15),
        True,
        "Swiss-U.S.",
        origin="ch",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "eea-japan-adequate[2019/419]",
        "JP",
        "adequacy",
        D(2020, 1, 1),
        D(2021, 1, 1),
        True,
        "Japan has an EU adequacy decision",
        risks=("covers only",),
    ),
    Case(
        "eea-india-no-adequacy[C-311/18]",
        "IN",
        "adequacy",
        D(2020, 1, 1),
        D(2021, 1, 1),
        False,
        "no EU adequacy decision",
    ),
    Case(
        "eea-germany-needs-nothing[TFEU-349-355]",
        "DE",
        "eu-us-privacy-shield",
        D(2018, 1, 1),
        D(2021, 1, 1),
        True,
        "in the EU/EEA",
    ),
    Case(
        "eea-japan-adequacy-beats-wrong-tool[2019/419]",
        "JP",
        "eu-us-dpf",
        D(2023, 8, 1),
        D(2023, 8, 1),
        True,
        "adequacy",
        certified=False,
        risks=("covers only",),
    ),
    # -- an export is judged only by its origin regime's tools --
    Case(
        "eea-cannot-use-idta[ICO-IDTA]",
        "US",
        "uk-idta",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool under the law of the EU/EEA",
    ),
    Case(
        "eea-cannot-use-uk-addendum[ICO-IDTA]",
        "US",
        "uk-addendum",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool",
    ),
    Case(
        "eea-cannot-use-uk-us-bridge[SI-2023/1028]",
        "US",
        "uk-us-data-bridge",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool",
        certified=True,
        certification=CHECKED,
    ),
    Case(
        "eea-cannot-use-swiss-dpf[CH-DPF-2024]",
        "US",
        "swiss-us-dpf",
        D(2025, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool",
        certified=True,
        certification=CHECKED,
    ),
    Case(
        "eea-cannot-use-swiss-privacy-shield[FDPIC-2020-09-08]",
        "US",
        "swiss-us-privacy-shield",
        D(2018, 1, 1),
        D(2019, 1, 1),
        False,
        "not a transfer tool",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "uk-cannot-use-eu-dpf-alone[SI-2023/1028]",
        "US",
        "eu-us-dpf",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool under the law of the United Kingdom",
        origin="uk",
        certified=True,
        certification=CHECKED,
    ),
    Case(
        "uk-cannot-use-2021-sccs-without-addendum[ICO-IDTA]",
        "US",
        "scc-2021",
        D(2023, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool",
        origin="uk",
    ),
    Case(
        "ch-cannot-use-uk-idta[ICO-IDTA]",
        "US",
        "uk-idta",
        D(2023, 1, 1),
        D(2026, 12, 1),
        False,
        "law of Switzerland",
        origin="ch",
    ),
    Case(
        "ch-cannot-use-eu-dpf[CH-DPF-2024]",
        "US",
        "eu-us-dpf",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "not a transfer tool",
        origin="ch",
        certified=True,
        certification=CHECKED,
    ),
    # -- the UK's own history --
    Case(
        "uk-2019-member-state-uses-eu-privacy-shield[EC-Brexit]",
        "US",
        "eu-us-privacy-shield",
        D(2018, 1, 1),
        D(2019, 6, 1),
        True,
        "Privacy Shield",
        origin="uk",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "uk-2020-transition-gdpr-applies[EC-Brexit]",
        "US",
        "scc-2010",
        D(2020, 3, 1),
        D(2020, 11, 30),
        True,
        "2010",
        origin="uk",
    ),
    Case(
        "uk-2020-transition-cannot-use-idta-yet[EC-Brexit]",
        "US",
        "uk-idta",
        D(2020, 3, 1),
        D(2020, 11, 30),
        False,
        "not a transfer tool under the law of the EU/EEA",
        origin="uk",
    ),
    Case(
        "uk-uk-us-bridge-not-yet-2023-10-11[SI-2023/1028]",
        "US",
        "uk-us-data-bridge",
        D(2023, 9, 1),
        D(2023, 10, 11),
        False,
        "from 2023-10-12",
        origin="uk",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "uk-uk-us-bridge-from-2023-10-12[SI-2023/1028]",
        "US",
        "uk-us-data-bridge",
        D(2023, 9, 1),
        D(2023, 10, 12),
        True,
        "UK-US data bridge",
        origin="uk",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "uk-legacy-scc-contract-2022-09-21-ok[ICO-IDTA]",
        "US",
        "scc-2010",
        D(2022, 9, 21),
        D(2023, 6, 1),
        True,
        "2010",
        origin="uk",
    ),
    Case(
        "uk-legacy-scc-contract-2022-09-22-refused[ICO-IDTA]",
        "US",
        "scc-2010",
        D(2022, 9, 22),
        D(2022, 10, 1),
        False,
        "on or after 2022-09-22",
        origin="uk",
    ),
    Case(
        "uk-legacy-scc-valid-2024-03-20[ICO-legacy-SCC]",
        "US",
        "scc-2010",
        D(2021, 5, 1),
        D(2024, 3, 20),
        True,
        "2010",
        origin="uk",
    ),
    Case(
        "uk-legacy-scc-ended-2024-03-21[ICO-legacy-SCC]",
        "US",
        "scc-2010",
        D(2021, 5, 1),
        D(2024, 3, 21),
        False,
        "2024-03-21",
        origin="uk",
    ),
    Case(
        "uk-legacy-scc-2021-contract-after-eu-repeal-ok-in-uk[ICO-IDTA]",
        "US",
        "scc-2010",
        D(2021, 11, 1),
        D(2022, 1, 1),
        True,
        "2010",
        origin="uk",
    ),
    Case(
        "uk-to-eea-adequate-under-uk-law[UK-adequacy-regs]",
        "FR",
        "adequacy",
        D(2022, 1, 1),
        D(2026, 12, 1),
        True,
        "adequate under United Kingdom",
        origin="uk",
    ),
    Case(
        "uk-to-korea-from-2022-12-19[UK-adequacy-regs]",
        "KR",
        "uk-idta",
        D(2022, 6, 1),
        D(2022, 12, 19),
        True,
        "adequate under United Kingdom",
        origin="uk",
        risks=("covers only recipients subject to PIPA",),
    ),
    Case(
        "uk-to-korea-before-2022-12-19-needs-tool[UK-adequacy-regs]",
        "KR",
        "adequacy",
        D(2022, 6, 1),
        D(2022, 12, 18),
        False,
        "no UK adequacy regulations",
        origin="uk",
    ),
    Case(
        "uk-to-uk-is-no-transfer[EC-Brexit]",
        "GB",
        "uk-idta",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "not an international transfer",
        origin="uk",
    ),
    # -- EU exports to the UK across its history --
    Case(
        "eea-to-uk-2019-member-state[EC-Brexit]",
        "GB",
        "scc-2010",
        D(2019, 1, 1),
        D(2019, 6, 1),
        True,
        "an EU Member State",
    ),
    Case(
        "eea-to-uk-2020-transition[EC-Brexit]",
        "GB",
        "adequacy",
        D(2019, 1, 1),
        D(2020, 12, 31),
        True,
        "transition period",
    ),
    Case("eea-to-uk-2021-bridge[EC-Brexit]", "GB", "adequacy", D(2019, 1, 1), D(2021, 3, 1), True, "FINPROV.10A"),
    Case(
        "eea-to-uk-2021-06-28-adequacy[EC-Brexit]", "GB", "adequacy", D(2019, 1, 1), D(2021, 6, 28), True, "2021/1772"
    ),
    Case(
        "eea-to-uk-2026-renewed[UK-renewal-2025]",
        "GB",
        "adequacy",
        D(2019, 1, 1),
        D(2026, 12, 1),
        True,
        "renewed on 2025-12-19",
    ),
    Case(
        "eea-to-uk-2032-after-renewal-ends[UK-renewal-2025]",
        "GB",
        "adequacy",
        D(2019, 1, 1),
        D(2032, 1, 1),
        False,
        "no EU adequacy decision",
    ),
    # -- Switzerland --
    Case(
        "ch-swiss-privacy-shield-2019[FDPIC-2020-09-08]",
        "US",
        "swiss-us-privacy-shield",
        D(2018, 1, 1),
        D(2019, 1, 1),
        True,
        "Swiss-U.S. Privacy Shield",
        origin="ch",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "ch-swiss-privacy-shield-ended-2020-09-08[FDPIC-2020-09-08]",
        "US",
        "swiss-us-privacy-shield",
        D(2018, 1, 1),
        D(2020, 9, 8),
        False,
        "2020-09-08",
        origin="ch",
        certified=True,
        certification=EARLY,
    ),
    Case(
        "ch-2021-sccs-not-yet-2021-08-26[FDPIC-SCC-2021]",
        "US",
        "scc-2021",
        D(2021, 8, 1),
        D(2021, 8, 26),
        False,
        "from 2021-08-27",
        origin="ch",
    ),
    Case(
        "ch-2021-sccs-from-2021-08-27[FDPIC-SCC-2021]",
        "US",
        "scc-2021",
        D(2021, 8, 1),
        D(2021, 8, 27),
        True,
        "2021",
        origin="ch",
    ),
    Case(
        "ch-old-sccs-until-2022-12-31[FDPIC-SCC-transition]",
        "US",
        "scc-2010",
        D(2020, 1, 1),
        D(2022, 12, 31),
        True,
        "2010",
        origin="ch",
    ),
    Case(
        "ch-old-sccs-ended-2023-01-01[FDPIC-SCC-transition]",
        "US",
        "scc-2010",
        D(2020, 1, 1),
        D(2023, 1, 1),
        False,
        "2022-12-31",
        origin="ch",
    ),
    Case(
        "ch-to-germany-adequate[CH-Annex1-DPO]",
        "DE",
        "adequacy",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "adequate under Switzerland",
        origin="ch",
    ),
    Case(
        "ch-to-switzerland-is-no-transfer[CH-Annex1-DPO]",
        "CH",
        "scc-2021",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "not an international transfer",
        origin="ch",
    ),
    # -- the contract's date, not the transfer's start, tests a closed mechanism --
    Case(
        "eea-scc-2010-contract-2021-09-26-starting-later-ok[2021/914]",
        "US",
        "scc-2010",
        D(2022, 1, 1),
        D(2022, 6, 1),
        True,
        "2010",
        instrument=D(2021, 9, 26),
    ),
    Case(
        "eea-scc-2010-contract-2021-09-27-refused[2021/914]",
        "US",
        "scc-2010",
        D(2021, 9, 1),
        D(2021, 10, 1),
        False,
        "dated 2021-09-27",
        instrument=D(2021, 9, 27),
    ),
    # -- the EU/EEA is all of it --
    Case("eea-to-aland[TFEU-349-355]", "AX", "scc-2021", D(2024, 1, 1), D(2026, 12, 1), True, "in the EU/EEA"),
    Case("eea-to-reunion[TFEU-349-355]", "RE", "scc-2021", D(2024, 1, 1), D(2026, 12, 1), True, "in the EU/EEA"),
    Case("eea-to-saint-martin[TFEU-349-355]", "MF", "scc-2021", D(2024, 1, 1), D(2026, 12, 1), True, "in the EU/EEA"),
    Case(
        "eea-to-new-caledonia-is-a-transfer[TFEU-349-355]",
        "NC",
        "adequacy",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "no EU adequacy decision",
    ),
    # -- 2025 and 2026 decisions, international organisations, scope-limited decisions --
    Case("eea-to-brazil-from-2026-01-26[2026/179]", "BR", "adequacy", D(2026, 2, 1), D(2026, 12, 1), True, "2026/179"),
    Case(
        "eea-to-brazil-2025-needs-tool[2026/179]",
        "BR",
        "adequacy",
        D(2025, 1, 1),
        D(2025, 12, 1),
        False,
        "no EU adequacy decision",
    ),
    Case(
        "eea-to-epo-adequate-from-2025-07-15[2025/1382]",
        "DE",
        "scc-2021",
        D(2025, 8, 1),
        D(2026, 12, 1),
        True,
        "European Patent Organisation has an EU adequacy decision",
        importer="European Patent Office",
    ),
    Case(
        "eea-to-epo-2024-is-a-transfer-needing-a-tool[2025/1382]",
        "DE",
        "adequacy",
        D(2024, 1, 1),
        D(2024, 6, 1),
        False,
        "no EU adequacy decision",
        importer="European Patent Organisation",
    ),
    Case(
        "eea-to-canada-scope-flagged[2002/2]",
        "CA",
        "adequacy",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "PIPEDA",
        risks=("covers only commercial organisations",),
    ),
    Case(
        "eea-to-japan-scope-flagged[2019/419]",
        "JP",
        "adequacy",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "APPI",
        risks=("covers only",),
    ),
    Case(
        "eea-to-korea-scope-flagged[2022/254]",
        "KR",
        "adequacy",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "Credit Information Act",
        risks=("covers only",),
    ),
    Case(
        "eea-to-israel-scope-flagged[2011/61]",
        "IL",
        "adequacy",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "automated",
        risks=("covers only",),
    ),
    # -- BCRs and Article 49 predate the GDPR; Article 49 never covers systematic transfers --
    Case(
        "eea-bcr-2010-under-the-directive[WP74]",
        "IN",
        "bcr",
        D(2010, 1, 1),
        D(2010, 6, 1),
        True,
        "Binding Corporate Rules",
    ),
    Case(
        "eea-art49-2001-under-the-directive[Dir-95/46-Art26]",
        "IN",
        "derogation-art49",
        D(2001, 1, 1),
        D(2001, 6, 1),
        True,
        "Derogation",
    ),
    Case(
        "eea-art49-never-systematic[EDPB-2/2018]",
        "IN",
        "derogation-art49",
        D(2024, 1, 1),
        D(2026, 12, 1),
        False,
        "never covers systematic transfers",
        systematic=True,
    ),
    Case(
        "eea-art49-occasional-ok[EDPB-2/2018]",
        "IN",
        "derogation-art49",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "Article 49",
    ),
    # -- valid but fragile: the risks --
    Case(
        "eea-scc-without-tia-risk[EDPB-Rec-01/2020]",
        "IN",
        "scc-2021",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "2021",
        tia=None,
        risks=("no transfer impact assessment",),
    ),
    Case(
        "eea-bcr-without-tia-risk[EDPB-Rec-01/2020]",
        "IN",
        "bcr",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "Binding Corporate Rules",
        tia=None,
        risks=("no transfer impact assessment",),
    ),
    Case(
        "eea-dpf-unverified-certification-risk[2023/1795]",
        "US",
        "eu-us-dpf",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "Data Privacy Framework",
        certified=True,
        risks=("not verified", "C-703/25 P"),
    ),
    Case(
        "eea-dpf-recorded-certification-appeal-risk-only[C-703/25P]",
        "US",
        "eu-us-dpf",
        D(2024, 1, 1),
        D(2026, 12, 1),
        True,
        "Data Privacy Framework",
        certified=True,
        certification=CHECKED,
        risks=("C-703/25 P",),
    ),
    Case(
        "eea-dpf-certification-checked-after-the-day-risk[2023/1795]",
        "US",
        "eu-us-dpf",
        D(2024, 1, 1),
        D(2025, 1, 1),
        True,
        "Data Privacy Framework",
        certified=True,
        certification=CHECKED,
        risks=("checked only on 2026-11-02",),
    ),
]


def test_every_case_cites_a_known_source() -> None:
    for case in CASES:
        tag = case.id.rsplit("[", 1)[-1].rstrip("]")
        assert case.id.endswith("]") and tag in SOURCES, case.id
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_assessment(case: Case) -> None:
    facts = TransferFacts(
        case.destination,
        case.mechanism,
        case.start,
        None,
        case.certified,
        origin=case.origin,
        instrument_date=case.instrument,
        importer=case.importer,
        tia_reference=case.tia,
        certification=case.certification,
        systematic=case.systematic,
    )
    verdict = assess(facts, case.day)
    assert verdict.valid is case.valid, verdict.reason
    assert case.words in verdict.reason, verdict.reason
    if not case.valid:
        assert verdict.suggested, "an invalid transfer must come with replacements valid that day"
        assert not verdict.risks
    joined = " | ".join(verdict.risks)
    for words in case.risks:
        assert words in joined, joined
    if case.valid and not case.risks:
        assert verdict.risks == (), verdict.risks


def test_suggestions_are_valid_on_the_day_and_of_the_same_regime() -> None:
    july_2020 = assess(TransferFacts("US", "eu-us-privacy-shield", D(2018, 1, 1), None, True), D(2020, 7, 17))
    assert july_2020.suggested == ("scc-2010",)  # the 2021 SCCs and the DPF did not exist yet
    after_dpf = assess(TransferFacts("US", "eu-us-privacy-shield", D(2018, 1, 1), None, True), D(2023, 8, 1))
    assert after_dpf.suggested[:2] == ("eu-us-dpf", "scc-2021")
    uncertified = assess(TransferFacts("US", "eu-us-privacy-shield", D(2018, 1, 1), None, False), D(2023, 8, 1))
    assert "eu-us-dpf" not in uncertified.suggested and "scc-2021" in uncertified.suggested
    uk = assess(TransferFacts("US", "eu-us-dpf", D(2024, 1, 1), None, True, origin="uk"), D(2026, 12, 1))
    assert set(uk.suggested) <= {"uk-us-data-bridge", "uk-addendum", "uk-idta"} and "uk-idta" in uk.suggested
    swiss = assess(TransferFacts("US", "uk-idta", D(2024, 1, 1), None, True, origin="ch"), D(2026, 12, 1))
    assert set(swiss.suggested) <= {"swiss-us-dpf", "scc-2021"} and "swiss-us-dpf" in swiss.suggested
    never_art49 = assess(TransferFacts("IN", "uk-idta", D(2024, 1, 1), None, None), D(2026, 12, 1))
    assert "derogation-art49" not in never_art49.suggested


def test_an_invalidation_recorded_by_legal_ends_a_mechanism() -> None:
    facts = TransferFacts("US", "eu-us-dpf", D(2023, 8, 1), None, True)
    assert assess(facts, D(2026, 1, 1)).valid
    verdict = assess(facts, D(2026, 1, 1), {"eu-us-dpf": D(2025, 12, 1)})
    assert not verdict.valid and "2025-12-01" in verdict.reason and "scc-2021" in verdict.suggested
