"""The feed table of credit's public lists (libs.common.feed): feeds `dishonesty` (one entry
per listing) and `evaluations` (one per published evaluation)."""

from __future__ import annotations

from libs.common.feed import FeedTables
from services.credit.models import metadata

public_feeds = FeedTables.define(metadata)

DISHONESTY = "dishonesty"
EVALUATIONS = "evaluations"
