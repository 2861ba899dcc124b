"""Single-window intake (一门受理): applications received at a township window, online or
reported by a grid worker, with first-contact responsibility (首问负责), the one-time notice
of missing documents (一次性告知) and a due date in PRC working days (限时办理).

Wiring (the app factory): include `services.needs.intake.api.router`, pass
`services.needs.intake.jobs.overdue_job` to the runtime's `jobs`, and import
`services.needs.intake.models` before the metadata is used (migrations, autogenerate).
"""
