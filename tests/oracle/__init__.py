"""The per-tick reference implementation the columnar engine is held to in tests.

``Pipeline`` decides one message at a time through the per-message operators, and
``run_per_tick_backtest`` with ``BacktestCollector`` writes a backtest's files and report from
it. Tests compare the engine with them byte for byte; the product never imports this package
(the ``oracle`` contract of ``[tool.importlinter]``).
"""
