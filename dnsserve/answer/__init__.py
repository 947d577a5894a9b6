"""Answers: pool policies, immutable snapshots and the pure answer engine."""
