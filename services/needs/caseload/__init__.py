"""Caseload per township and the staffing each province's pack requires."""
