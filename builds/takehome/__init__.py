"""Taking a build's image home: a `docker load` archive streamed to the browser, and a push to
the registry the operator configured, with its per-layer report live on the page."""
