"""The interaction record's classes (応対記録): what operators record after a call, what the
first-contact resolution KPI counts, and what the desk offers."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CLASS_LABELS", "OtherKind", "OutcomeClass"]


class OutcomeClass(StrEnum):
    """Interaction record classes (応対記録) as the city's contract names them."""

    COMPLETE = "完了"  # answered from the FAQ or the web
    PARTIAL = "一部完了"  # partly answered
    TRANSFER_FAQ = "転送F"  # transferred because the FAQ says so
    PUT_THROUGH = "取次"  # put through to a named person or section on request
    TRANSFER = "転送"  # no information available, handed to city staff
    OTHER = "その他"  # excluded from FCR; needs a kind


class OtherKind(StrEnum):
    CITY_STAFF = "city_staff"
    SALES = "sales"
    WRONG_NUMBER = "wrong_number"
    ONE_RING = "one_ring"


# each class's name as the contract gives it, with what it means (Japanese, English): the
# desk, the console's pages and the monthly report all show these
CLASS_LABELS: dict[str, tuple[str, str]] = {
    OutcomeClass.COMPLETE: ("完了(FAQ・Web等で回答)", "Complete (answered from the FAQ)"),
    OutcomeClass.PARTIAL: ("一部完了", "Partly answered"),
    OutcomeClass.TRANSFER_FAQ: ("転送F(FAQの指示で転送)", "Transferred as the FAQ directs"),
    OutcomeClass.PUT_THROUGH: ("取次(内線・職員・組織の指定)", "Put through on request"),
    OutcomeClass.TRANSFER: ("転送(情報がなく職員へ依頼)", "Transferred (no information)"),
    OutcomeClass.OTHER: ("その他(集計対象外)", "Other (excluded)"),
}
