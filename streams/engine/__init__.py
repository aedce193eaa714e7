"""The columnar engine: pure operators over batches of ticks, shared by live and replay.

A batch is a struct of numpy arrays for one partition (``batch.TickBatch``), with an
instrument index per row. Each stateful operator takes its state and a batch and returns
columnar outputs; sequential maths runs in numba kernels with the state passed in and out, so
any split of a stream into batches gives byte-identical outputs and state (the property the
batch-invariance tests hold). Nothing here imports Kafka, faust or a wall clock.
"""
