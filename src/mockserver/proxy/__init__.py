"""`itsocr-mock proxy`: forward to the real service, validate its answers, record fixtures.

`upstream` is the client that forwards one request, streaming both ways; `forwarding` the
proxy's rules (budget, validation with `mockserver.validation`, journal, access log);
`recording` writes fixtures `serve --fixtures DIR` loads; `app` the Flask app (thin views and
the proxy's control API); `serving` runs it on the mock's serving layer (gunicorn).
"""
