"""Schemathesis hooks for shiplog's API, loaded by run.py (SCHEMATHESIS_HOOKS=hooks).

`POST /api/v1/import` reads `application/x-ndjson`, which schemathesis does not write by
itself: each generated body (one import record, or whatever a negative case holds) is sent as
one line of JSON.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    return (json.dumps(value) + "\n").encode("utf-8")
