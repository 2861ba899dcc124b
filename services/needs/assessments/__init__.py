"""Needs assessments (需求评估), with the self-care assessment of 特困人员."""
