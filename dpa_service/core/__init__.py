"""Framework-free ground floor: settings, identity, database and tenant scope, clock, ids, errors, registry, secrets."""
