"""Generated from protos/authsvc/v1 by `make proto`: never edit by hand."""
