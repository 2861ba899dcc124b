"""Daily per-region statistics of the platform (统计): needs, time to match, spend against
the cap, satisfaction and active organisations by grade; see service.py for why here."""
