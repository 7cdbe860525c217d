"""The HTTP edge, and the only layer that speaks Flask: the app factory (the composition
root), authentication, errors, the body parser, OpenAPI, views, schemas, the console and
its charts."""
