"""The finops dashboards: a Dash app over the shared query layer (``finops.*.queries``).

``finops dashboard --config F`` serves it; ``finops up`` starts it beside the proxy and the worker.
"""
