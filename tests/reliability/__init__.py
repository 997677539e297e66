"""Reliability suite (issue 9): crash and resume, no stray traffic, no leaked secrets."""
