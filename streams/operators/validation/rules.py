"""What the outlier rule of every validator shares: the robust scale of a move.

The rules themselves run in the engine's validation kernel (``streams.engine.validate``); the
tests keep them one tick at a time as its reference (``tests/oracle/rules.py``).
"""

MAD_TO_STD = 1.4826  # a normal distribution's std is 1.4826 times its median absolute deviation
