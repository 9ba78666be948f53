"""The outbox: every message to WeCom as a row, delivered once by the sender."""
