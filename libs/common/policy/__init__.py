"""Policy packs (政策包): each province's purchasing rules as validated, cited data.

    from libs.common.policy import load_pack, pack_for_region

    pack = pack_for_region("220102")          # 吉林省长春市南关区 → the Jilin pack
    item = pack.catalogue_item("care")
    item.source.cite()                        # '吉民发〔2020〕44号 §三(一)2'

See DESIGN.md §4 and policy/README.md for the documents behind the packs.
"""

from libs.common.policy.loader import (
    PolicyPackError,
    available_packs,
    calendar_for,
    load_pack,
    load_pack_file,
    pack_for_region,
)
from libs.common.policy.schema import (
    CATALOGUE_CODES,
    CONTRACTOR_KIND_CODES,
    NEGATIVE_LIST_CODES,
    NON_RECIPIENT_GROUPS,
    PROVINCE_CODES,
    RECIPIENT_CATEGORY_CODES,
    AdmissionCondition,
    BasePlusPerStaffing,
    BudgetCap,
    CatalogueItem,
    Citation,
    ContractorKind,
    ContractTerm,
    EvaluationWeights,
    FundingSource,
    HolidayCalendar,
    NegativeListEntry,
    PolicyPack,
    PriceWeightBand,
    PurchasingMethod,
    PurchasingMethodCode,
    RecipientCategory,
    SanctionRules,
    ServiceKind,
    Severity,
    SourceDocument,
    StaffingRule,
    StaffingTier,
    TieredStaffing,
    TimeLimits,
    TrainingRule,
    validate_pack,
)

__all__ = [
    "CATALOGUE_CODES",
    "CONTRACTOR_KIND_CODES",
    "NEGATIVE_LIST_CODES",
    "NON_RECIPIENT_GROUPS",
    "PROVINCE_CODES",
    "RECIPIENT_CATEGORY_CODES",
    "AdmissionCondition",
    "BasePlusPerStaffing",
    "BudgetCap",
    "CatalogueItem",
    "Citation",
    "ContractTerm",
    "ContractorKind",
    "EvaluationWeights",
    "FundingSource",
    "HolidayCalendar",
    "NegativeListEntry",
    "PolicyPack",
    "PolicyPackError",
    "PriceWeightBand",
    "PurchasingMethod",
    "PurchasingMethodCode",
    "RecipientCategory",
    "SanctionRules",
    "ServiceKind",
    "Severity",
    "SourceDocument",
    "StaffingRule",
    "StaffingTier",
    "TieredStaffing",
    "TimeLimits",
    "TrainingRule",
    "available_packs",
    "calendar_for",
    "load_pack",
    "load_pack_file",
    "pack_for_region",
    "validate_pack",
]
