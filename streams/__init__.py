"""tickwise streams: pure operators (``streams.operators``) and the live edge (``streams.live``)."""
