"""Schemathesis hooks of scripts/api-fuzz: a check that no secret comes back in a response.

The secrets are the ones the script set up (admin token, the sandbox credential's API key, the
vault's master key; one `name=value` per line in API_FUZZ_SECRETS) and every secret field the
generated request itself sent (api_key, client_secret, refresh_token, password), when long
enough that finding it in a response cannot be chance. A failure names the secret, never
shows it.
"""

import os

import schemathesis

KNOWN = [
    tuple(line.split("=", 1))
    for line in os.environ.get("API_FUZZ_SECRETS", "").splitlines()
    if "=" in line and line.split("=", 1)[1].strip()
]
SECRET_FIELDS = {"api_key", "client_secret", "refresh_token", "password"}
# A generated value must look like a secret to be looked for: long, and not one character
# repeated ("0000000000000000", which the generator also gives as a name or description, and
# which the answer then rightly shows).
MIN_SENT_CHARS = 12
MIN_DISTINCT_CHARS = 6


def _strings(value, secret):
    """(field, text) of every string in a request body, at any depth: secret fields when
    `secret`, the other fields otherwise."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if (key in SECRET_FIELDS) == secret:
                    yield key, item.strip()
            else:
                yield from _strings(item, secret)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, secret)


def _sent(body):
    """Secret-looking values of the secret fields of a generated request body."""
    plain = {text for _, text in _strings(body, secret=False)}
    for key, text in _strings(body, secret=True):
        if (
            len(text) >= MIN_SENT_CHARS
            and len(set(text)) >= MIN_DISTINCT_CHARS
            and not any(text in other for other in plain)
        ):
            yield f"the {key} the request sent", text


@schemathesis.check
def no_secret_in_response(ctx, response, case):
    """No configured secret, nor a secret the request sent, in the response body or headers."""
    body = response.content.decode("utf-8", "replace")
    headers = "\n".join(
        f"{name}: {value}" for name, values in response.headers.items() for value in values
    )
    shown = body + "\n" + headers
    for name, secret in KNOWN + list(_sent(getattr(case, "body", None))):
        if secret in shown:
            where = "body" if secret in body else "headers"
            raise AssertionError(f"{name} is in the response {where}")
