"""The control API, `/_mock`: thin views that parse JSON, call the backend and serialise.

Its contract is `openapi-control.yaml`. One module per area, each a blueprint of its own
nested in `control`: `mock` (health, reset), `accounts` (accounts and tokens), `usage` (usage
and the clock), `faults`, `fixtures` (OCR fixtures registered at run time) and `journal`
(the requests received); `common` is how they all read a request and shape an answer. Control
requests are never journalled nor counted.
"""

from __future__ import annotations

from flask import Blueprint

from mockserver.control import accounts, faults, fixtures, journal, mock, usage
from mockserver.control.common import no_store
from mockserver.control.journal import entry_json
from mockserver.control.mock import health_only

__all__ = ["control", "entry_json", "health_only"]

control = Blueprint("control", __name__, url_prefix="/_mock")
control.after_request(no_store)  # the nested blueprints' answers too
for area in (mock, accounts, usage, faults, fixtures, journal):
    control.register_blueprint(area.views)
