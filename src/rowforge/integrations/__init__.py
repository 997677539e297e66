"""Embedding rowforge's engine in other tools. Each integration is an optional extra."""
