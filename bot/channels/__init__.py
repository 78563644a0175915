"""One module per platform: each turns its payloads into a neutral Message and replies back."""
