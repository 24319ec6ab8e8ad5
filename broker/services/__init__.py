"""Use cases: keyword-only async functions taking a session and ports explicitly; they never commit."""
