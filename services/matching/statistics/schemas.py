"""Responses of the statistics endpoint."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class DailyStatistics(BaseModel):
    """One region's figures for one day (China time)."""

    model_config = ConfigDict(from_attributes=True)

    day: date
    region_code: str
    needs_opened: int
    needs_matched: int
    needs_served: int = Field(description="Needs first served that day")
    needs_fulfilled: int
    needs_cancelled: int
    median_minutes_to_match: float | None = Field(
        description="Median minutes from opening to first match, of the needs matched that day"
    )
    budget_reserved_fen: int = Field(description="Budgets held by approved projects (the year)")
    cap_fen: int | None = Field(description="The ledgers' 2 % caps (None: no cap applies)")
    cap_used: float | None = Field(description="budget_reserved_fen / cap_fen")
    evaluations: int = Field(description="Evaluations published that day")
    average_satisfaction: float | None = Field(description="Recipients' satisfaction, 0–1")
    active_organisations: int
    active_by_grade: dict[str, int]
    version: int
    computed_at: datetime
