"""Policy packs: the rules each province's documents give, as validated data.

A pack (政策包) holds one province's rules for buying social-assistance services
(政府购买社会救助服务): the service catalogue (服务清单), the negative list (不得购买事项),
recipient categories (救助对象类别), purchasing methods (购买方式), contract terms, the budget
cap, township staffing (经办人员配备), evaluation weights (绩效评价), the price weight band,
the procurement procedure of each method (政府采购规则: bid windows, minimum suppliers and
bids, panels, publicity, recusal), sanctions (失信惩戒), contractor kinds and admission
conditions (承接主体及条件), and time limits at the single window (一门受理).

Every rule carries a `Citation` to the clause it comes from, so an explanation shown to a
purchaser, an organisation or a recipient can quote the policy. Values the documents do not
give are still needed to run the platform; those are *local settings* (本地设置): the model
lists them by field name in `local_settings` and explains them in `note`, so nobody mistakes
a platform choice for a policy rule.

All models are frozen and forbid unknown fields: a misspelt key in a pack file fails at load
with a pydantic error naming the field, instead of being silently ignored.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# --------------------------------------------------------------------------------------------
# Shared vocabularies. Codes are stable snake_case English across all packs (DESIGN.md §4), so
# events, projections and explanations can compare them between provinces.
# --------------------------------------------------------------------------------------------

ServiceKind = Literal["administrative", "direct"]

#: code → (kind, Chinese name, English name). 事务性工作 = administrative, 服务性工作 = direct.
CATALOGUE_CODES: dict[str, tuple[ServiceKind, str, str]] = {
    "case_finding": ("administrative", "对象排查", "Case finding"),
    "means_survey": ("administrative", "家计调查", "Household means survey"),
    "needs_assessment": ("administrative", "需求评估", "Needs assessment"),
    "planning_design": ("administrative", "规划设计", "Planning and design"),
    "policy_research": ("administrative", "策略研究", "Policy research"),
    "topic_study": ("administrative", "课题调研", "Topic study"),
    "policy_outreach": ("administrative", "政策宣传", "Policy outreach"),
    "staff_training": ("administrative", "业务培训", "Staff training"),
    "performance_evaluation": ("administrative", "绩效评价", "Performance evaluation"),
    "economic_verification": (
        "administrative",
        "家庭经济状况核对",
        "Household economic-status verification",
    ),
    "care": ("direct", "照料护理", "Care"),
    "rehabilitation": ("direct", "康复训练", "Rehabilitation training"),
    "hospital_escort": ("direct", "送医陪护", "Hospital escort"),
    "counselling": ("direct", "心理疏导", "Counselling"),
    "community_care": ("direct", "社区照顾", "Community care"),
    "intergenerational_harmony": ("direct", "代际融洽", "Intergenerational harmony"),
    "capacity_building": ("direct", "能力提升", "Capacity building"),
    "community_advocacy": ("direct", "社区倡导", "Community advocacy"),
    "community_participation": ("direct", "社区参与", "Community participation"),
    "social_integration": ("direct", "社会融入", "Social integration"),
    "resource_linking": ("direct", "资源链接", "Resource linking"),
    "rare_disease_followup": ("direct", "罕见病对象跟踪", "Rare-disease follow-up"),
}

#: 救助对象类别. 低保边缘 and 低收入家庭 share one code: the documents use both words for the
#: same band just above the 低保 line (Zhejiang "低边", Jilin "低收入家庭认定").
RECIPIENT_CATEGORY_CODES: dict[str, str] = {
    "tekun": "特困人员",
    "dibao": "低保对象",
    "dibao_edge": "低保边缘/低收入家庭",
    "medical_aid": "医疗救助对象",
    "temporary_aid": "临时救助对象",
    "left_behind_child": "农村留守儿童",
    "child_in_difficulty": "困境儿童",
    "rare_disease": "罕见病患者",
}

#: Groups a catalogue item may serve that are not recipients (Zhejiang's annex names them:
#: training is for 经办人员, evaluation for 民政部门, outreach also for 困难群众 at large).
NON_RECIPIENT_GROUPS: dict[str, str] = {
    "caseworkers": "社会救助经办人员",
    "civil_affairs_departments": "民政部门",
    "people_in_difficulty": "困难群众",
}

#: 承接主体类别. `public_institution_business` (生产经营类事业单位) and
#: `state_funded_mass_organisation` (由财政拨款保障的群团组织) are named by the documents
#: themselves and added to the list DESIGN.md gives.
CONTRACTOR_KIND_CODES: dict[str, str] = {
    "social_organisation": "社会组织",
    "public_institution_class_ii": "公益二类事业单位",
    "public_institution_business": "生产经营类事业单位",
    "enterprise": "企业",
    "rural_collective": "农村集体经济组织",
    "grassroots_autonomous": "基层群众性自治组织",
    "public_institution_class_i": "公益一类事业单位",
    "state_funded_mass_organisation": "由财政拨款保障的群团组织",
}

#: 不得购买事项 (Jilin 2020 §三(二)1–6 = 财政部令第102号 第十条(一)–(六)).
NEGATIVE_LIST_CODES: dict[str, str] = {
    "outside_government_duties": "不属于政府职责范围内的服务事项",
    "direct_government_duties": "应由政府直接履职的事项",
    "goods_and_works": "货物和工程，以及将工程和服务打包的项目",
    "financing": "融资行为",
    "staffing_and_posts": "人员招聘用、劳务派遣用工、设置公益性岗位",
    "other_prohibited": "法律、行政法规以及政府规定的其他不得购买事项",
}

#: Province name → first two digits of the administrative division code (GB/T 2260).
PROVINCE_CODES: dict[str, str] = {"jilin": "22", "zhejiang": "33", "hainan": "46"}

PurchasingMethodCode = Literal[
    "open_tender",  # 公开招标
    "invited_tender",  # 邀请招标
    "competitive_negotiation",  # 竞争性谈判
    "competitive_consultation",  # 竞争性磋商
    "single_source",  # 单一来源采购
]
Severity = Literal["minor", "general", "serious"]

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# Sections follow each document's own numbering: 三(二)5 = part 三, item (二), point 5;
# 二(一)3(2) allows one more level; 附件 = the annex; 第七十七条 or 第十条(三) = an article
# (and item) of a law or ministerial regulation. ASCII parentheses, no leading "§" (cite() adds it).
_CN_NUM = "零一二三四五六七八九十百"
_SECTION = re.compile(
    rf"^(?:附件|第[{_CN_NUM}]+条(?:\([{_CN_NUM}]+\))?"
    rf"|[{_CN_NUM}]+(?:\([{_CN_NUM}]+\))?(?:\d+(?:\(\d+\))?)?)$"
)
_ONE = Decimal(1)


class _Model(BaseModel):
    """Base of every pack model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _LocalSettings(_Model):
    """Mixin for models whose numbers may be platform choices rather than policy.

    `local_settings` names the fields whose values are *not* from the cited document;
    `note` says why they were chosen. An explanation must not cite the document for them.
    """

    local_settings: list[str] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _local_settings_name_fields(self) -> _LocalSettings:
        unknown = [name for name in self.local_settings if name not in type(self).model_fields]
        if unknown:
            raise ValueError(f"local_settings names unknown fields: {unknown}")
        if self.local_settings and not self.note:
            raise ValueError("local_settings need a note saying why the values were chosen")
        return self

    def is_local_setting(self, field: str) -> bool:
        return field in self.local_settings


# --------------------------------------------------------------------------------------------
# Citations and sources
# --------------------------------------------------------------------------------------------


class Citation(_Model):
    """Where a rule comes from: document number, section, and a short excerpt (引文).

    `doc` is the document number as in policy/README.md (e.g. 吉民发〔2020〕44号) or, for a
    document without one, its short name; it must be one of the pack's `sources`.
    """

    doc: str = Field(min_length=1)
    section: str
    quote: str | None = Field(default=None, min_length=1, max_length=120)

    @field_validator("section")
    @classmethod
    def _section_format(cls, value: str) -> str:
        if not _SECTION.match(value):
            raise ValueError(
                f"section {value!r} is not in the document's numbering, e.g. 三(二)5, 附件 or "
                "第七十七条 (no leading §, ASCII parentheses)"
            )
        return value

    def cite(self) -> str:
        """`吉民发〔2020〕44号 §三(二)5`; articles read naturally: `… 第七十七条`."""
        if self.section.startswith("第"):
            return f"{self.doc} {self.section}"
        return f"{self.doc} §{self.section}"


class SourceDocument(_Model):
    """One document a pack draws on (来源文件), for showing its title next to a citation."""

    doc: str = Field(min_length=1)
    title_zh: str
    issuer_zh: str
    issued_on: date | None = None
    file: str | None = None  # the file under /work/shared/policy/ when we hold the text
    note: str | None = None


# --------------------------------------------------------------------------------------------
# Catalogue, negative list, recipients
# --------------------------------------------------------------------------------------------


class CatalogueItem(_Model):
    """A purchasable service (可以购买服务的事项) in the province's list.

    `target_groups` are codes of recipient categories (or of `NON_RECIPIENT_GROUPS`) the
    document names for the item; empty means the document names none. `target_groups_zh`
    keeps the document's own wording, which is often looser ("…等").
    """

    code: str
    name_zh: str
    name_en: str
    kind: ServiceKind
    definition: str | None = None
    target_groups: list[str] = Field(default_factory=list)
    target_groups_zh: str | None = None
    note: str | None = None
    source: Citation

    @model_validator(mode="after")
    def _code_and_kind(self) -> CatalogueItem:
        known = CATALOGUE_CODES.get(self.code)
        if known is None:
            raise ValueError(
                f"catalogue code {self.code!r} is not in the shared list; add it to "
                "CATALOGUE_CODES only if a document names the service"
            )
        if known[0] != self.kind:
            raise ValueError(f"{self.code} is {known[0]} work, not {self.kind}")
        if len(set(self.target_groups)) != len(self.target_groups):
            raise ValueError(f"{self.code}: duplicated target group")
        return self


class NegativeListEntry(_Model):
    """Something that may never be bought as a service (负面清单 / 不得购买事项)."""

    code: str
    description_zh: str
    description_en: str
    source: Citation

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in NEGATIVE_LIST_CODES:
            raise ValueError(f"unknown negative-list code {value!r}")
        return value


class RecipientCategory(_Model):
    """A category of people the province's documents name as served (救助对象类别)."""

    code: str
    name_zh: str
    note: str | None = None
    source: Citation

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RECIPIENT_CATEGORY_CODES:
            raise ValueError(f"unknown recipient category {value!r}")
        return value


# --------------------------------------------------------------------------------------------
# Purchasing, contracts, money
# --------------------------------------------------------------------------------------------


class PurchasingMethod(_Model):
    """One of the five government-procurement methods (政府采购方式)."""

    code: PurchasingMethodCode
    name_zh: str
    note: str | None = None
    source: Citation


class ContractTerm(_Model):
    """Contract length (合同履行期限): normally ≤ 1 year; ≤ 3 years for stable services.

    The longer term needs a budget guarantee (预算保障) and a service that is stable: fixed
    content, strong continuity, stable funding, small price changes.
    """

    default_max_months: int = Field(default=12, gt=0)
    stable_max_months: int = Field(default=36, gt=0)
    stable_conditions_zh: str | None = None
    source: Citation
    stable_source: Citation | None = None

    @model_validator(mode="after")
    def _order(self) -> ContractTerm:
        if self.stable_max_months < self.default_max_months:
            raise ValueError("stable_max_months must be ≥ default_max_months")
        return self


class BudgetCap(_Model):
    """Total purchasing budget as a share of a fund base (购买服务经费总额度上限).

    `in_principle` records "原则上": the cap may be exceeded with a reason, so the platform
    warns rather than refuses.
    """

    ratio: Decimal = Field(gt=0, le=1)
    basis: str
    in_principle: bool = True
    source: Citation


class FundingSource(_Model):
    """Where the money for a kind of work may come from (经费来源)."""

    code: Literal["working_funds", "special_funds", "welfare_lottery"]
    name_zh: str
    applies_to: Literal["administrative", "direct", "any"]
    source: Citation


# --------------------------------------------------------------------------------------------
# Staffing of township offices (乡镇（街道）社会救助经办人员配备)
# --------------------------------------------------------------------------------------------


def _check_recipients(recipients: int) -> None:
    if recipients < 0:
        raise ValueError(f"recipients must be ≥ 0, got {recipients}")


class StaffingTier(_Model):
    """Up to `max_recipients` (inclusive; None = no upper bound) → `workers`."""

    max_recipients: int | None = Field(default=None, ge=0)
    workers: int = Field(ge=0)


class TieredStaffing(_LocalSettings):
    """Workers by caseload band (Zhejiang: < 500 → 1, 500–1000 → 2, > 1000 → more).

    Beyond the last bounded tier, `above_top_per` recipients (or part of them) add one
    worker each: "适当增加" with a number the platform must choose (a local setting).
    """

    kind: Literal["tiered"] = "tiered"
    tiers: list[StaffingTier] = Field(min_length=1)
    above_top_per: int | None = Field(default=None, gt=0)
    source: Citation

    @model_validator(mode="after")
    def _tiers_ordered(self) -> TieredStaffing:
        bounds = [t.max_recipients for t in self.tiers]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may have no upper bound")
        bounded = [b for b in bounds if b is not None]
        if bounded != sorted(set(bounded)):
            raise ValueError("tiers must have strictly increasing max_recipients")
        workers = [t.workers for t in self.tiers]
        if workers != sorted(workers):
            raise ValueError("more recipients must never mean fewer workers")
        if bounds[-1] is not None and self.above_top_per is None:
            raise ValueError("above_top_per is needed when the last tier is bounded")
        if bounds[-1] is None and self.above_top_per is not None:
            raise ValueError("above_top_per is meaningless when the last tier is unbounded")
        return self

    def required_workers(self, recipients: int) -> int:
        """Purchased workers a township (街道) with `recipients` recipients must have."""
        _check_recipients(recipients)
        for tier in self.tiers:
            if tier.max_recipients is None or recipients <= tier.max_recipients:
                return tier.workers
        top = self.tiers[-1]
        assert top.max_recipients is not None and self.above_top_per is not None
        # ceil: the first recipient past the top bound already needs more help ("适当增加").
        return top.workers + math.ceil((recipients - top.max_recipients) / self.above_top_per)


class BasePlusPerStaffing(_LocalSettings):
    """`base` staff plus one per `per_recipients` recipients (Hainan "2+N").

    Hainan §三(二): "在确保2名民政专职人员的基础上，按照每1500名民政社会救助对象至少指定1名
    社会救助专职工作人员". "至少 1 per 1,500" is a floor on the ratio workers/recipients ≥
    1/1500, so N = ceil(recipients / 1500): 1,500 → 1, 1,501 → 2, 0 → 0. Floor would leave
    a township with 1,499 recipients without any dedicated worker, which "至少" rules out.
    """

    kind: Literal["base_plus_per"] = "base_plus_per"
    base: int = Field(ge=0)
    per_recipients: int = Field(gt=0)
    rounding: Literal["ceil", "floor"] = "ceil"
    source: Citation

    def required_workers(self, recipients: int) -> int:
        _check_recipients(recipients)
        if self.rounding == "ceil":
            extra = -(-recipients // self.per_recipients)
        else:
            extra = recipients // self.per_recipients
        return self.base + extra


StaffingRule = Annotated[TieredStaffing | BasePlusPerStaffing, Field(discriminator="kind")]


# --------------------------------------------------------------------------------------------
# Evaluation, price, sanctions
# --------------------------------------------------------------------------------------------


class EvaluationWeights(_LocalSettings):
    """Weights of the three evaluators (购买主体、服务对象、第三方) in a performance score.

    The documents require recipients' satisfaction (服务对象满意度) to count most; the numbers
    are usually local settings.
    """

    purchaser: Decimal = Field(ge=0, le=1)
    recipients: Decimal = Field(ge=0, le=1)
    third_party: Decimal = Field(ge=0, le=1)
    dimensions_zh: list[str] = Field(default_factory=list)  # 服务成效、项目管理、社会影响
    results_public: bool = True  # 评价结果向社会公开
    used_in_selection: bool = True  # 作为以后年度选择承接主体的重要参考依据
    source: Citation

    @model_validator(mode="after")
    def _weights(self) -> EvaluationWeights:
        total = self.purchaser + self.recipients + self.third_party
        if total != _ONE:
            raise ValueError(f"evaluation weights must sum to 1, got {total}")
        if not (self.recipients > self.purchaser and self.recipients > self.third_party):
            raise ValueError("recipients' satisfaction must weigh more than each other evaluator")
        return self


class PriceWeightBand(_LocalSettings):
    """Share of price in a services scoring method (服务项目价格分值占总分值的比重).

    The documents say quality comes first and "价低者得" may not decide; the band itself comes
    from national procurement rules listed in `legal_basis`.
    """

    min: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    max: Decimal = Field(default=Decimal("0.30"), ge=0, le=1)
    source: Citation
    legal_basis: list[Citation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _band(self) -> PriceWeightBand:
        if self.min > self.max:
            raise ValueError(f"price weight band min {self.min} > max {self.max}")
        return self

    def contains(self, weight: Decimal) -> bool:
        return self.min <= weight <= self.max


# --------------------------------------------------------------------------------------------
# Procurement procedure (政府采购规则)
# --------------------------------------------------------------------------------------------

#: How a method finds its suppliers: anyone qualified may respond (`open`, 公开), a random draw
#: from the qualified (`drawn`, 随机抽取 — invited tender), either (`drawn_or_open`, 公告或邀请
#: — negotiation, consultation), or the one supplier named by the justification (`named`).
SupplierSource = Literal["open", "drawn", "drawn_or_open", "named"]


class MethodProcurement(_LocalSettings):
    """The procedure of one purchasing method (采购程序): how many suppliers, how long bids stay
    open, how many valid responses it needs, how large its panel is, what may follow a failure.

    Every number carries the clause it comes from in its `*_source`; a number without one must
    be named in `local_settings` (a platform choice, explained in `note`).
    """

    method: PurchasingMethodCode
    suppliers: SupplierSource
    # At least this many suppliers invited (drawn or named); None when the method is open.
    min_invited: int | None = Field(default=None, ge=1)
    min_invited_source: Citation | None = None
    # Fewer valid bids (responses) at opening → the purchase fails (废标 / 采购失败).
    min_valid_bids: int = Field(ge=1)
    min_valid_bids_source: Citation | None = None
    # Calendar days from publication to the bid deadline (等标期), at least.
    min_bid_days: int | None = Field(default=None, gt=0)
    min_bid_days_source: Citation | None = None
    # Working days the justification is publicised before award (公示期), at least.
    publicity_working_days: int | None = Field(default=None, gt=0)
    publicity_source: Citation | None = None
    # Smallest evaluation panel (评标委员会 / 谈判小组 / 磋商小组), an odd number.
    panel_min_size: int = Field(ge=1)
    panel_source: Citation | None = None
    # Methods a new purchase of the same project may use after this one failed.
    after_failure: list[PurchasingMethodCode] = Field(default_factory=list)
    after_failure_source: Citation | None = None

    @model_validator(mode="after")
    def _numbers_cited(self) -> MethodProcurement:
        errors: list[str] = []
        for name, source_name in (
            ("min_invited", "min_invited_source"),
            ("min_valid_bids", "min_valid_bids_source"),
            ("min_bid_days", "min_bid_days_source"),
            ("publicity_working_days", "publicity_source"),
            ("panel_min_size", "panel_source"),
            ("after_failure", "after_failure_source"),
        ):
            value = getattr(self, name)
            has_value = bool(value) if isinstance(value, list) else value is not None
            if has_value and getattr(self, source_name) is None and name not in self.local_settings:
                errors.append(f"{name} needs {source_name} (or be listed in local_settings)")
        if self.panel_min_size % 2 == 0:
            errors.append(f"panel_min_size must be odd (单数), got {self.panel_min_size}")
        invited = self.suppliers in ("drawn", "drawn_or_open", "named")
        if invited and self.min_invited is None:
            errors.append(f"{self.suppliers} suppliers need min_invited")
        if not invited and self.min_invited is not None:
            errors.append("an open method invites nobody: min_invited must be empty")
        if self.min_invited is not None and self.min_invited < self.min_valid_bids:
            errors.append("min_invited below min_valid_bids: the purchase could never succeed")
        if self.method in self.after_failure:
            errors.append("after_failure must name other methods")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def cites(self) -> list[Citation]:
        """The clauses of this method's numbers (for explanations), without duplicates."""
        found: list[Citation] = []
        for c in (
            self.min_invited_source,
            self.min_valid_bids_source,
            self.min_bid_days_source,
            self.publicity_source,
            self.panel_source,
            self.after_failure_source,
        ):
            if c is not None and c not in found:
                found.append(c)
        return found


class ProcurementRules(_LocalSettings):
    """Government-procurement rules a purchase of services must follow (政府采购规则).

    National law and regulations (政府采购法, its 实施条例, 财政部令第87号, 财库〔2014〕214号)
    apply in every province; each pack carries them so every refusal can cite its clause.
    """

    methods: list[MethodProcurement] = Field(min_length=1)
    # 采购预算金额在1000万元以上 … 7人以上单数: the threshold in fen (分), inclusive.
    high_value_threshold_fen: int = Field(gt=0)
    high_value_panel_min_size: int = Field(ge=1)
    high_value_methods: list[PurchasingMethodCode] = Field(min_length=1)
    high_value_source: Citation
    # Recusal (回避): an expert related to a bidder in the past `recusal_years` years is out.
    recusal_years: int = Field(gt=0)
    # Affiliation kinds (employment 劳动关系, directorship 董事/监事, shareholding 控股股东/实际
    # 控制人) that oblige recusal, as providers' expert library records them.
    recusal_relations: list[str] = Field(min_length=1)
    recusal_source: Citation

    @model_validator(mode="after")
    def _consistent(self) -> ProcurementRules:
        errors: list[str] = []
        counts = Counter(m.method for m in self.methods)
        dupes = sorted(code for code, n in counts.items() if n > 1)
        if dupes:
            errors.append(f"methods: duplicated {dupes}")
        if self.high_value_panel_min_size % 2 == 0:
            errors.append("high_value_panel_min_size must be odd (单数)")
        for code in self.high_value_methods:
            rule = next((m for m in self.methods if m.method == code), None)
            if rule is None:
                errors.append(f"high_value_methods: {code} has no procedure in methods")
            elif rule.panel_min_size > self.high_value_panel_min_size:
                errors.append(f"high-value panel smaller than the ordinary {code} panel")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def method(self, code: str) -> MethodProcurement | None:
        return next((m for m in self.methods if m.method == code), None)

    def is_high_value(self, method: str, budget_fen: int) -> bool:
        """Whether a purchase needs the larger panel (1000万元以上, inclusive)."""
        return method in self.high_value_methods and budget_fen >= self.high_value_threshold_fen

    def panel_size(self, method: str, budget_fen: int) -> int:
        """The smallest lawful panel for a purchase: odd, and larger at high value."""
        rule = self.method(method)
        if rule is None:
            raise LookupError(f"no procurement procedure for method {method!r}")
        if self.is_high_value(method, budget_fen):
            return max(rule.panel_min_size, self.high_value_panel_min_size)
        return rule.panel_min_size


class SanctionRules(_LocalSettings):
    """Bans, publication and appeals for dishonest contractors (失信惩戒、信用修复、申诉)."""

    ban_months_by_severity: dict[Severity, int]
    min_publication_months: dict[Severity, int]
    appeal_window_working_days: int = Field(gt=0)
    response_window_working_days: int = Field(gt=0)
    joint_punishment: bool = False  # 失信联合惩戒
    source: Citation
    legal_basis: list[Citation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _severities(self) -> SanctionRules:
        order: tuple[Severity, ...] = ("minor", "general", "serious")
        for name in ("ban_months_by_severity", "min_publication_months"):
            table: dict[Severity, int] = getattr(self, name)
            if set(table) != set(order):
                raise ValueError(f"{name} needs exactly minor, general and serious")
            values = [table[s] for s in order]
            if any(v < 0 for v in values) or values != sorted(values):
                raise ValueError(f"{name} must be ≥ 0 and not decrease with severity")
        return self


class CreditScoringRules(_LocalSettings):
    """Credit evaluation of contractors (信用评价、动态评价): score, grade and what an
    unqualified performance evaluation (绩效评价不合格) leads to.

    The documents ask for a credit system with dynamic evaluation (动态评价) and for
    evaluation results to count in later selections; none gives a formula, so every number
    here is a local setting (本地设置) explained in `note`:

    - `base_score`: the score of an organisation without published evaluations, and the prior
      every evaluation pulls away from; `base_weight` is how much that prior counts, in units
      of one fresh evaluation;
    - `half_life_months`: an evaluation `half_life_months` old weighs half a fresh one
      (recent ones weigh more), counted in whole months;
    - `deductions_by_severity`: points off per decided violation, for `deduction_months`
      after the decision;
    - timely delivery: ± `timely_delivery_points` by the share of deliveries on time against
      `timely_delivery_target`, once an organisation has `timely_delivery_min` deliveries; a
      delivery is on time when matching says so, else when confirmed within
      `timely_confirmation_days` of the day it was delivered;
    - `grade_thresholds`: lowest score of each grade, best first (A ≥ 90 …), `lowest_grade`
      below the last;
    - `pass_mark`: an evaluation total at or above it is qualified (合格);
      `min_survey_responses` answers are needed to publish (or every served recipient, when
      fewer were served);
    - `repeated_unqualified_count` unqualified results in a row within
      `repeated_unqualified_window_months` record a violation (连续不合格) of
      `repeated_unqualified_severity`, decided under due process like any other.
    """

    base_score: Decimal = Field(ge=0, le=100)
    base_weight: Decimal = Field(gt=0)
    half_life_months: int = Field(gt=0)
    deductions_by_severity: dict[Severity, Decimal]
    deduction_months: int = Field(gt=0)
    timely_delivery_points: Decimal = Field(ge=0, le=100)
    timely_delivery_target: Decimal = Field(gt=0, lt=1)
    timely_delivery_min: int = Field(ge=1)
    timely_confirmation_days: int = Field(ge=0)
    grade_thresholds: dict[str, Decimal] = Field(min_length=1)
    lowest_grade: str = Field(min_length=1, max_length=10)
    pass_mark: Decimal = Field(gt=0, le=100)
    min_survey_responses: int = Field(ge=1)
    repeated_unqualified_count: int = Field(ge=2)
    repeated_unqualified_window_months: int = Field(gt=0)
    repeated_unqualified_severity: Severity = "general"
    # The clause asking for a credit system (信用体系 / 征信管理) or for results to count.
    source: Citation
    # Evaluation results are published and used in later selections (结果应用).
    results_source: Citation
    # What an unqualified result leads to (整改 / 取消资格 / 退出、淘汰).
    unqualified_source: Citation

    @model_validator(mode="after")
    def _consistent(self) -> CreditScoringRules:
        errors: list[str] = []
        order: tuple[Severity, ...] = ("minor", "general", "serious")
        if set(self.deductions_by_severity) != set(order):
            errors.append("deductions_by_severity needs exactly minor, general and serious")
        else:
            values = [self.deductions_by_severity[s] for s in order]
            if any(v < 0 for v in values) or values != sorted(values):
                errors.append("deductions_by_severity must be ≥ 0 and not decrease with severity")
        bounds = list(self.grade_thresholds.values())
        if any(not 0 < b <= 100 for b in bounds):
            errors.append("grade_thresholds must lie in (0, 100]")
        if bounds != sorted(bounds, reverse=True) or len(set(bounds)) != len(bounds):
            errors.append("grade_thresholds must strictly decrease, best grade first")
        if self.lowest_grade in self.grade_thresholds:
            errors.append(f"lowest_grade {self.lowest_grade!r} also has a threshold")
        if any(not 1 <= len(g) <= 10 for g in self.grade_thresholds):
            errors.append("grade names must be 1–10 characters")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def grade_of(self, score: float) -> str:
        """The grade of a score: the first (best) grade whose threshold it reaches."""
        for grade, bound in self.grade_thresholds.items():
            if score >= float(bound):
                return grade
        return self.lowest_grade


# --------------------------------------------------------------------------------------------
# Contractors
# --------------------------------------------------------------------------------------------


class ContractorKind(_Model):
    """A kind of organisation and whether it may take a contract (承接主体范围)."""

    code: str
    name_zh: str
    allowed: bool
    note: str | None = None
    source: Citation

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CONTRACTOR_KIND_CODES:
            raise ValueError(f"unknown contractor kind {value!r}")
        return value


class AdmissionCondition(_Model):
    """A condition a contractor must meet to be admitted (承接主体应满足的条件)."""

    code: str
    description_zh: str
    description_en: str
    applies_to: list[str] = Field(default_factory=list)  # contractor kinds; empty = all
    # "admission": checked when an organisation enters the library (准入);
    # "project": checked per purchasing project / bid (项目具体条件).
    stage: Literal["admission", "project"] = "admission"
    source: Citation

    @field_validator("code")
    @classmethod
    def _snake(cls, value: str) -> str:
        if not _SNAKE.match(value):
            raise ValueError(f"admission condition code {value!r} is not snake_case")
        return value


# --------------------------------------------------------------------------------------------
# Single window and training
# --------------------------------------------------------------------------------------------


class TimeLimits(_LocalSettings):
    """Time limits at the single window (一门受理、限时办理) and for dynamic review.

    The documents require 限时办理 but set no numbers; the numbers are local settings.
    `reassessment_months` is keyed by recipient category code (动态管理复核周期).
    """

    intake_working_days: int = Field(gt=0)  # accept, or refer (转办/转介), an application
    reassessment_months: dict[str, int] = Field(default_factory=dict)
    max_visits: int | None = Field(default=None, gt=0)  # Zhejiang "最多跑一次" → 1
    source: Citation

    @field_validator("reassessment_months")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v <= 0}
        if bad:
            raise ValueError(f"reassessment periods must be > 0 months: {bad}")
        return value


class TrainingRule(_Model):
    """Training of township social-assistance staff (人员培训)."""

    min_sessions_per_year: int = Field(gt=0)
    pre_job_training_required: bool
    source: Citation


# --------------------------------------------------------------------------------------------
# The pack
# --------------------------------------------------------------------------------------------


def _iter_citations(value: Any, path: str) -> Iterator[tuple[str, Citation]]:
    """Every Citation inside a model, with a dotted path for error messages."""
    if isinstance(value, Citation):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _iter_citations(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _iter_citations(item, f"{path}.{i}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _iter_citations(item, f"{path}.{key}")


class HolidayCalendar(_Model):
    """Official holidays (放假) and adjusted working days (调休上班) for years the working-day
    library does not know yet, from the State Council's annual notice
    (国务院办公厅关于某年部分节假日安排的通知). Deadlines in those years count by this list;
    in years neither knows they are refused, never guessed."""

    years: list[int] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    source: Citation

    @model_validator(mode="after")
    def _dates_in_years(self) -> HolidayCalendar:
        stray = sorted(d for d in (*self.holidays, *self.workdays) if d.year not in self.years)
        if stray:
            raise ValueError(f"dates outside the listed years: {', '.join(map(str, stray))}")
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"dates both holiday and working day: {', '.join(map(str, both))}")
        return self


class PolicyPack(_Model):
    """One province's rules, versioned (e.g. 2026.1) and validated at load."""

    province: Literal["jilin", "zhejiang", "hainan"]
    province_code: str
    name_zh: str
    version: str = Field(pattern=r"^\d{4}\.\d+$")
    effective_from: date
    sources: list[str] = Field(min_length=1)
    documents: list[SourceDocument] = Field(default_factory=list)
    catalogue: list[CatalogueItem] = Field(min_length=1)
    negative_list: list[NegativeListEntry]
    recipient_categories: list[RecipientCategory] = Field(min_length=1)
    purchasing_methods: list[PurchasingMethod] = Field(min_length=1)
    contract_term: ContractTerm
    budget_cap: BudgetCap | None = None
    funding_sources: list[FundingSource] = Field(default_factory=list)
    staffing: StaffingRule | None = None
    evaluation_weights: EvaluationWeights
    price_weight_band: PriceWeightBand
    procurement: ProcurementRules
    sanctions: SanctionRules
    credit_scoring: CreditScoringRules
    contractor_kinds: list[ContractorKind] = Field(min_length=1)
    admission_conditions: list[AdmissionCondition] = Field(min_length=1)
    time_limits: TimeLimits
    training: TrainingRule | None = None
    holiday_calendar: HolidayCalendar | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PolicyPack:
        errors: list[str] = []
        if PROVINCE_CODES[self.province] != self.province_code:
            errors.append(
                f"province_code {self.province_code!r} does not match {self.province} "
                f"({PROVINCE_CODES[self.province]})"
            )
        # Unique codes: a duplicate would make lookups by code depend on list order.
        for name in (
            "catalogue",
            "negative_list",
            "recipient_categories",
            "purchasing_methods",
            "contractor_kinds",
            "admission_conditions",
            "funding_sources",
        ):
            counts = Counter(item.code for item in getattr(self, name))
            dupes = sorted(code for code, n in counts.items() if n > 1)
            if dupes:
                errors.append(f"{name}: duplicated codes {dupes}")
        for name, values in (
            ("sources", self.sources),
            ("documents", [d.doc for d in self.documents]),
        ):
            dupes = sorted(v for v, n in Counter(values).items() if n > 1)
            if dupes:
                errors.append(f"{name}: duplicated {dupes}")
        if self.documents and {d.doc for d in self.documents} != set(self.sources):
            errors.append("documents must describe exactly the pack's sources")
        # Every rule must cite a document the pack declares it draws on.
        known = set(self.sources)
        for path, citation in _iter_citations(self, ""):
            if citation.doc not in known:
                errors.append(f"{path}: cites {citation.doc!r}, which is not in sources")
        categories = {c.code for c in self.recipient_categories}
        groups = categories | set(NON_RECIPIENT_GROUPS)
        for item in self.catalogue:
            unknown = [g for g in item.target_groups if g not in groups]
            if unknown:
                errors.append(f"catalogue.{item.code}: unknown target groups {unknown}")
        unknown = sorted(set(self.time_limits.reassessment_months) - categories)
        if unknown:
            errors.append(f"time_limits.reassessment_months: unknown categories {unknown}")
        kinds = {k.code for k in self.contractor_kinds}
        for cond in self.admission_conditions:
            stray = [k for k in cond.applies_to if k not in kinds]
            if stray:
                errors.append(f"admission_conditions.{cond.code}: unknown kinds {stray}")
        if not any(k.allowed for k in self.contractor_kinds):
            errors.append("contractor_kinds: no kind is allowed")
        # Each method the pack allows has exactly one procedure, and nothing else has one.
        offered = {m.code for m in self.purchasing_methods}
        ruled = {m.method for m in self.procurement.methods}
        if offered != ruled:
            errors.append(
                f"procurement.methods must cover exactly the purchasing methods: missing "
                f"{sorted(offered - ruled)}, unknown {sorted(ruled - offered)}"
            )
        for rule in self.procurement.methods:
            stray = sorted(set(rule.after_failure) - offered)
            if stray:
                errors.append(f"procurement.{rule.method}.after_failure: unknown methods {stray}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    # -- lookups ------------------------------------------------------------------------------

    def catalogue_item(self, code: str) -> CatalogueItem | None:
        return next((i for i in self.catalogue if i.code == code), None)

    def direct_services(self) -> list[CatalogueItem]:
        """服务性工作: services delivered to recipients."""
        return [i for i in self.catalogue if i.kind == "direct"]

    def administrative_services(self) -> list[CatalogueItem]:
        """事务性工作: work done for the purchaser."""
        return [i for i in self.catalogue if i.kind == "administrative"]

    def category(self, code: str) -> RecipientCategory | None:
        return next((c for c in self.recipient_categories if c.code == code), None)

    def contractor_kind(self, code: str) -> ContractorKind | None:
        return next((k for k in self.contractor_kinds if k.code == code), None)

    def negative_entry(self, code: str) -> NegativeListEntry | None:
        return next((e for e in self.negative_list if e.code == code), None)

    def admission_condition(self, code: str) -> AdmissionCondition | None:
        return next((c for c in self.admission_conditions if c.code == code), None)

    def purchasing_method(self, code: str) -> PurchasingMethod | None:
        return next((m for m in self.purchasing_methods if m.code == code), None)

    def document(self, doc: str) -> SourceDocument | None:
        return next((d for d in self.documents if d.doc == doc), None)

    def citations(self) -> list[tuple[str, Citation]]:
        """Every citation in the pack with its dotted path (e.g. `catalogue.0.source`)."""
        return list(_iter_citations(self, ""))


def validate_pack(data: Mapping[str, Any] | PolicyPack) -> PolicyPack:
    """Validate a pack given as plain data (a loaded YAML mapping) or re-check a model.

    Raises `pydantic.ValidationError`, whose message names the failing field.
    """
    if isinstance(data, PolicyPack):
        data = data.model_dump(mode="python")
    return PolicyPack.model_validate(data)
