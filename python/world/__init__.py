"""A synthetic "multi-interest world" for DMIN: data generator (generate.py) and training/export (train.py)."""
