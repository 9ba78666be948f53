"""The chat archive (会话内容存档): reading it, and what sopbot learns from group messages."""
