"""Copied from authsvc/v1 by `make proto` (scripts/gen_proto.py): never edit by hand."""
