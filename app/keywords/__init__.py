"""Keyword auto-replies (keywords.yaml): the rules, a fast matcher, and the live rule book."""

from app.keywords.rules import KeywordsFile, load_keywords

__all__ = ["KeywordsFile", "load_keywords"]
