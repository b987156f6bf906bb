"""Route modules: importing one registers its routes on the default app."""
