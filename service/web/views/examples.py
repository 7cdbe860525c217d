"""Example request bodies for the OpenAPI document, shown and pre-filled at /docs.

The applicant is the one of the README's walk-through, whom the stub world approves for this
request; the consent is given by the development channel key's front-end, ``dev-channel``.
"""

from __future__ import annotations

NATIONAL_ID = "420106199311082617"

CONSENT = {
    "national_id": NATIONAL_ID,
    "scopes": ["provident_fund", "social_security", "income_tax", "credit_report",
               "court_records"],
    "purpose": "credit_application",
    "granted_at": "2026-11-29T09:00:00+08:00",
    "expires_at": "2027-11-28T09:00:00+08:00",
    "text_version": "2026-01",
    "channel": "dev-channel",
}

APPLICATION = {
    "applicant": {"national_id": NATIONAL_ID, "name": "张三", "mobile": "13812348000"},
    "request": {"amount": 30000, "term_months": 12, "purpose": "travel"},
    "consent_id": "c_5f0c3e1a9b7d4c2e8f6a1b3c5d7e9f01",
}

REVIEW_REQUEST = {"reason": "我的收入比记录的高，请人工复核。My income is higher than recorded; "
                            "please have a person review the decision."}

RESOLUTION = {
    "upheld": {"summary": "Uphold the decision",
               "value": {"outcome": "upheld",
                         "note": "The sources were read correctly; the decision stands."}},
    "overturned": {"summary": "Overturn a decline into an approval",
                   "value": {"outcome": "overturned",
                             "note": "Payslips show the income the tax record lacked."}},
    "overturned_with_terms": {
        "summary": "Overturn a decline on terms the officer chooses",
        "value": {"outcome": "overturned", "note": "Income verified by payslips; a cautious line.",
                  "terms": {"credit_limit": 10000, "annual_rate": 0.18}}},
    "amended": {"summary": "Change an approval's credit line",
                "value": {"outcome": "amended",
                          "note": "The debt-service bound counted a loan repaid last month.",
                          "terms": {"credit_limit": 30000, "annual_rate": 0.126}}},
}

OUTCOME = {
    "drawn": {"summary": "A loan drawn, and its months so far",
              "value": {"application_id": "a_3c5d7e9f015f0c3e1a9b7d4c2e8f6a1b", "drawn": True,
                        "drawn_at": "2026-11-30T10:15:00+08:00", "amount": 30000,
                        "performance": [
                            {"month": "2026-12", "status": "current", "days_past_due": 0},
                            {"month": "2027-01", "status": "past_due", "days_past_due": 12}]}},
    "correction": {"summary": "Correct a month posted before",
                   "value": {"application_id": "a_3c5d7e9f015f0c3e1a9b7d4c2e8f6a1b",
                             "drawn": True, "drawn_at": "2026-11-30T10:15:00+08:00",
                             "amount": 30000,
                             "performance": [{"month": "2027-01", "status": "current",
                                              "days_past_due": 0}]}},
    "not_drawn": {"summary": "An approval the applicant did not draw",
                  "value": {"application_id": "a_3c5d7e9f015f0c3e1a9b7d4c2e8f6a1b",
                            "drawn": False}},
}
