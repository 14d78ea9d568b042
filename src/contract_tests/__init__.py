"""The itsOCR contract suite: does an implementation keep the contract of `openapi.yaml`?

Run it against the mock, started in-process on a free port::

    pytest contract_tests

or, once the kit is installed, against any implementation from any directory::

    pytest --pyargs contract_tests --base-url https://itsocr.com --itsocr-token itsocr_...

`--base-url` is the target's origin or its API base (``.../api/v1``). When the origin answers
``GET /_mock/health`` the suite drives state through the control API (fresh accounts, usage,
clock, faults) and runs every clause; otherwise it runs what one token allows and every skip
names the option that unlocks it. See `contract_tests.plugin` for the options, and the clause
table printed at the end of the run for what was checked.
"""
