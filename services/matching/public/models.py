"""The public read model of the market: one feed table and its counter (libs.common.feed).

Feeds: `tenders` (采购公告), `results` (评审结果公告), `contracts` (合同公告), `acceptances`
(验收结果), and `ocds` (OCDS releases, grouped by ocid). Each entry is the public document of
one record, rendered from matching's own tables by the consumer in `events.py`.
"""

from __future__ import annotations

from libs.common.feed import FeedTables
from services.matching.models import metadata

public_feeds = FeedTables.define(metadata)

TENDERS = "tenders"
RESULTS = "results"
CONTRACTS = "contracts"
ACCEPTANCES = "acceptances"
OCDS = "ocds"
