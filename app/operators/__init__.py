"""Operators: the people who run the community (SOPBOT_OPERATORS) and how they log in to the
console (app/faces/console)."""
