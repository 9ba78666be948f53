"""The inbox: every accepted callback, stored before the answer and handled exactly once."""
