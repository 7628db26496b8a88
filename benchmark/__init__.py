"""RLS3 benchmark suite: RL-guided synthetic sample selection for VLM spatial reasoning.

What each module computes is specified in ``docs/spec.md``; comments cite it as "spec section N".
"""

__version__ = "0.1.0"
