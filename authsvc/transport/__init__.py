"""Transport: the gRPC server. Turns messages into domain calls and domain errors into status codes."""
