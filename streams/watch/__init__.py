"""``tickwise watch``: the watchtower, an independent faust app beside the workers.

It checks what the event-time pipeline cannot see itself: that the audit trail's hash chains
hold as records arrive, that every decision gets its audit record, and, by the wall clock, that
feeds tick, workers keep up and the broker answers. Its findings are ``Alert`` messages on the
``alerts`` topic. The checks are plain functions (``chain``, ``health``); ``app`` is the faust
edge that feeds them and keeps their state in tables.
"""
