"""The framework layer: what users of HTTPy touch."""
