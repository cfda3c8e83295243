"""One module per resource; each endpoint declares its roles with finops.api.auth.allow."""
