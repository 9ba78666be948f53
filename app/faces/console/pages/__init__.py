"""The console's pages, one module each exposing `router` (listed in routes.PAGES)."""
