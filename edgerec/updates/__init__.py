"""Incremental updates (edgerec.update): new interactions -> grown tables -> replay fine-tuning -> regression gate
-> the next version; its config; and byte-range deltas that carry a phone bundle to that version."""
