"""The live edge: everything that talks to Kafka. Operators never import from here."""
