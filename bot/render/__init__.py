"""Rendering replies for each channel: Adaptive Cards (Teams), Block Kit (Slack), plain text."""
