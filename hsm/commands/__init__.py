"""One module per step: each returns plain data and prints nothing."""
