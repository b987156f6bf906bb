"""``make attack``: hostile clients against a live HTTPy server, a normal client beside."""
