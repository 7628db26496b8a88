"""RLS3 benchmark suite: RL-guided synthetic sample selection for VLM spatial reasoning."""

__version__ = "0.1.0"
