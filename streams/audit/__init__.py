"""The audit trail at rest: the append-only store (``store``), the Kafka sink that fills it from
the ``audit`` topic (``sink``), and ``tickwise audit`` (``cli``).

The store needs no Kafka client; only the sink imports one.
"""
