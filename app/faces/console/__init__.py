"""The operator console (/console): login, sessions, CSRF, and the server-rendered pages.

routes.install(app) wires it into the FastAPI app; pages join `routes.pages`, which puts every
route behind the login and every unsafe method behind the CSRF check.
"""
