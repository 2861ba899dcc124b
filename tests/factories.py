"""Factories for test data (valid by default; override what a test is about)."""

from __future__ import annotations

import random
from typing import Any

from stdnum.cn import ric, uscc

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    body = "52220102MJ" + "".join(rng.choice(_USCC_ALPHABET) for _ in range(7))
    return body + uscc.calc_check_digit(body)


def resident_id(county: str = "220102", rng: random.Random | None = None, year: int = 1950) -> str:
    rng = rng or random.Random()
    born = f"{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"{county}{born}{rng.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit


def organisation(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uscc": credit_code(),
        "name": "长春市南关区阳光社会工作服务中心",
        "kind": "social_organisation",
        "region_code": "220102",
        "service_regions": ["2201"],
        "services": [{"code": "care", "monthly_capacity": 10}],
        "qualifications": {
            "procurement_law_compliance": True,
            "independent_civil_liability": True,
            "facilities_staff_expertise": True,
            "governance_finance_assets": True,
        },
    }
    body.update(overrides)
    return body


def recipient(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id_number": resident_id(),
        "name": "张三",
        "region_code": "220102001001",
        "categories": ["tekun"],
    }
    body.update(overrides)
    return body
