"""Allocation in the matching service: the engine wired to matching's tables and events.

- `supply.py`: open needs and the supply that may serve them (contracts, charity resources);
- `plan.py`: the engine's result as matches to write, with explanations and "why not";
- `writes.py`: batched writes with capacity re-checked in SQL, events through the outbox;
- `runs.py`: runs on demand and micro-batches as needs arrive (`micro_batch_job`);
- `takeover.py`: temporary takeover (临时接管预案) when credit bars an organisation;
- `locks.py`: one run per province at a time (advisory locks on PostgreSQL);
- `wiring.py`: the subscriptions and jobs `services.matching.app` registers.
"""
