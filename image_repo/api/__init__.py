"""Flask blueprints: parse, call the service, respond."""
