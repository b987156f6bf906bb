"""Middleware modules: importing one registers its middleware on the default app."""
