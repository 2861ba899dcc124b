"""Admission overrides (四眼), performance evaluations (绩效评价) with recipients' surveys, and
credit scores and grades (信用评价) with their history."""
