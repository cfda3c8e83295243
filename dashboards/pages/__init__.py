"""One module per page: ``layout(ctx, search)`` builds its skeleton, ``register(app, ctx)`` its callbacks."""
