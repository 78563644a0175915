"""Replies as plain text (``text.py``): the terminal's, and the fallback of every card. Each
platform draws its own cards in its package under ``bot/channels/``."""
