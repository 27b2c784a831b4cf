"""What every HTTP handler shares: authentication and guards, dependencies, problem details, pagination, idempotency."""
