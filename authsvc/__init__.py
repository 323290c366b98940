"""authsvc: a gRPC authentication service with rotating refresh tokens and a REST sidecar."""
