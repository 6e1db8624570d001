"""Deals: money in a pipeline stage, with stage rules and a recorded stage history."""
