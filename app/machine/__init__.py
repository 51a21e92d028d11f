"""What the machine offers a run: the environment check, ``stage=doctor`` and memory per stage."""
