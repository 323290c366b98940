"""The domain: credential checks and the session lifecycle (issue, rotate, revoke)."""
