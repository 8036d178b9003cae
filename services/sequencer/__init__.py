"""The sequencer: the only writer of trading state. `core/` is pure; the rest does the I/O."""
