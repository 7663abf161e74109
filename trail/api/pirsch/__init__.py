"""The Pirsch API v1: one module per resource as a user sees it; errors in Pirsch's format."""
