"""Public disclosure (信息公开) of the market: tender notices, results, contracts and acceptance
results, as lists and change feeds, without login."""
