"""tradebus services: the sequencer (core + service), feeds, gateways, strategy hosts, control, CLI."""
