"""The service's routers: ``compare`` (/compare, /compare-live-face), ``liveness``, ``service``, ``demo`` (the demo page)."""
