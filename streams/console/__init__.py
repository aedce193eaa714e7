"""The trader and operator console: a live web page over the topics, with audited controls."""
