"""Golden tests of secret masking (lsp/exclusion/secrets.py): real-looking samples per language and
format, and false positives that must stay untouched (lockfile hashes, UUIDs, examples, fixtures).

Token-shaped samples are assembled from pieces so that this file itself holds no contiguous secret.
"""

from __future__ import annotations

import time

import pytest

from lsp.exclusion import Secret, SecretMasker, find_line_secrets, restore_secrets, reveals_secret

AKIA = "AKIA" + "4QWERTYUIOPASDF7"
AWS_SECRET = "kT9vYw2+Jf8sLq3/ZxCvBnM1" + "aS4dF6gH7jK0lPoU"
GHP = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"
GHS = "ghs_" + "Qw3rTy7uIo0pAs4dFg8hJk1lZx5cVb9nMm2q"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0abcdefghijkl_" + "MNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
GLPAT = "glpat-" + "Xy7zAb3cDe9fGh1iJk2L"
XOXB = "xoxb-" + "2041234567890-2041234567891-Zq8WnT3kLp0sVb6yRc1dFh4m"
SLACK_HOOK_PATH = "T024BE7LD/B01A2BC3DEF/" + "aBcDeFgH1jKlMnOpQrStUvWx"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9."
       + "4pcPyMD09olPSyXnrXCjTwXyr4BsezdI1AVTmud2fU4")
BEARER = "tQ7mZ2" + "xVbN8kLp4RsWd1Yc"
STRIPE = "sk_live_" + "51HqLyjWDarjtT1zdp7dcQeR"
GOOGLE = "AIzaSy" + "D-9tSrke72PouQMnMX7a7eZSW0jkFMBWY"
UUID = "123e4567-e89b-12d3-a456-426614174000"


def mask_line(line: str) -> str:
    return SecretMasker().mask(line).text


@pytest.mark.parametrize(("line", "expected"), [
    # AWS
    pytest.param(f'AWS_ACCESS_KEY_ID = "{AKIA}"', 'AWS_ACCESS_KEY_ID = "<secret:aws-access-key-id>"', id="aws-key-id-py"),
    pytest.param(f'AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"', 'AWS_SECRET_ACCESS_KEY = "<secret:aws-secret-key>"',
                 id="aws-secret-py"),
    pytest.param(f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = <secret:aws-secret-key>",
                 id="aws-secret-ini"),
    pytest.param(f's3 = boto3.client("s3", aws_access_key_id="{AKIA}", aws_secret_access_key="{AWS_SECRET}")',
                 's3 = boto3.client("s3", aws_access_key_id="<secret:aws-access-key-id>", '
                 'aws_secret_access_key="<secret:aws-secret-key>")', id="aws-boto3-kwargs"),
    # GitHub, GitLab, Slack
    pytest.param(f'token = "{GHP}"', 'token = "<secret:github-token>"', id="github-classic"),
    pytest.param(f"const octokit = new Octokit({{ auth: '{GITHUB_PAT}' }});",
                 "const octokit = new Octokit({ auth: '<secret:github-token>' });", id="github-fine-grained-js"),
    pytest.param(f"git clone https://x-access-token:{GHS}@github.com/org/repo.git",
                 "git clone https://x-access-token:<secret:github-token>@github.com/org/repo.git", id="github-in-url"),
    pytest.param(f"GITLAB_TOKEN={GLPAT}", "GITLAB_TOKEN=<secret:gitlab-token>", id="gitlab-env"),
    pytest.param(f'client = WebClient(token="{XOXB}")', 'client = WebClient(token="<secret:slack-token>")',
                 id="slack-bot-token"),
    pytest.param(f'WEBHOOK = "https://hooks.slack.com/services/{SLACK_HOOK_PATH}"',
                 'WEBHOOK = "https://hooks.slack.com/services/<secret:slack-webhook>"', id="slack-webhook"),
    # JWT, bearer
    pytest.param(f'const session = "{JWT}";', 'const session = "<secret:jwt>";', id="jwt-js"),
    pytest.param(f'headers = {{"Authorization": "Bearer {BEARER}"}}',
                 'headers = {"Authorization": "Bearer <secret:token>"}', id="bearer-header"),
    # password= / secret= / token= with literals, in many languages
    pytest.param('password = "hunter2"', 'password = "<secret:password>"', id="password-py"),
    pytest.param("db_password: str = 'S3cure!Pass'", "db_password: str = '<secret:password>'", id="password-annotated"),
    pytest.param('  "password": "Tr0ub4dor&3",', '  "password": "<secret:password>",', id="password-json"),
    pytest.param("const dbPassword: string = 'c0rrect-h0rse';", "const dbPassword: string = '<secret:password>';",
                 id="password-ts"),
    pytest.param('\tpassword := "g0-S3cret!"', '\tpassword := "<secret:password>"', id="password-go"),
    pytest.param('    private String password = "J4va-Pass!";', '    private String password = "<secret:password>";',
                 id="password-java"),
    pytest.param("    'password' => 'Php-S3cret9',", "    'password' => '<secret:password>',", id="password-php"),
    pytest.param('conn = connect(user="app", password="pg-Pa55word")', 'conn = connect(user="app", password="<secret:password>")',
                 id="password-kwarg"),
    pytest.param("  password: Sup3r$ecret", "  password: <secret:password>", id="password-yaml-bare"),
    pytest.param("spring.datasource.password=Sup3r$ecret", "spring.datasource.password=<secret:password>",
                 id="password-properties"),
    pytest.param('SECRET_KEY = "django-insecure-9x!k2#b8m@p$q7w"', 'SECRET_KEY = "<secret:secret>"', id="secret-django"),
    pytest.param('client_secret = "f3c9a1b7e2d44c8a9b6e"', 'client_secret = "<secret:secret>"', id="client-secret"),
    pytest.param(f'STRIPE_API_KEY = "{STRIPE}"', 'STRIPE_API_KEY = "<secret:api-key>"', id="api-key-entropy"),
    pytest.param(f'  apiKey: "{GOOGLE}",', '  apiKey: "<secret:api-key>",', id="api-key-js-object"),
    pytest.param('auth_token = "9f8e7d6c5b4a39281706ABCD"', 'auth_token = "<secret:token>"', id="token-entropy"),
    # connection strings
    pytest.param('DATABASE_URL = "postgres://app:Sup3rS3cret@db.internal:5432/app"',
                 'DATABASE_URL = "postgres://app:<secret:password>@db.internal:5432/app"', id="postgres-url"),
    pytest.param("MONGO = 'mongodb+srv://admin:m0ng0-Pa55@cluster0.example.net/db'",
                 "MONGO = 'mongodb+srv://admin:<secret:password>@cluster0.example.net/db'", id="mongodb-url"),
    pytest.param('cache = Redis.from_url("redis://:r3dis-Pa55@cache:6379/0")',
                 'cache = Redis.from_url("redis://:<secret:password>@cache:6379/0")', id="redis-url-no-user"),
])
def test_masks_secrets(line: str, expected: str) -> None:
    assert mask_line(line) == expected


@pytest.mark.parametrize("line", [
    # lockfiles and checksums
    pytest.param('      "integrity": "sha512-Q3B2ZGRlZjEyMzQ1Njc4OTBhYmNkZWYxMjM0NTY3ODkwYWJjZGVmMTIzNDU2Nzg5MGFi==",',
                 id="package-lock-integrity"),
    pytest.param('    {file = "requests-2.32.3-py3-none-any.whl", hash = "sha256:70761cfe03c773ceb22aa2f671b4757976145175'
                 'cdfca038c02654d061d6dcc6"},', id="poetry-lock-hash"),
    pytest.param("golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=", id="go-sum"),
    pytest.param('checksum = "a3c29f1e1a5c0d6d6ac1e8bde8f3b2b0e79c58b5a36f1c44d2d9a0d6e3b7f1c2"', id="cargo-lock"),
    pytest.param('token_checksum = "sha256:9b74c9897bac770ffc029102a200c5de"', id="prefixed-hash-under-token-name"),
    # UUIDs and ids
    pytest.param(f'request_id = "{UUID}"', id="uuid-request-id"),
    pytest.param(f'  "id": "{UUID}",', id="uuid-json-id"),
    pytest.param(f'api_key_id = "{UUID}"', id="uuid-api-key-id"),
    pytest.param(f'session_token = "{UUID}"', id="uuid-under-token-name"),
    pytest.param('commit = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"', id="git-sha"),
    # examples, templates, references
    pytest.param('AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"', id="aws-docs-key-id"),
    pytest.param('AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', id="aws-docs-secret"),
    pytest.param('password = "${DB_PASSWORD}"', id="template-dollar"),
    pytest.param('password: "{{ vault_db_password }}"', id="template-jinja"),
    pytest.param('DATABASE_URL = "postgres://app:${DB_PASSWORD}@db:5432/app"', id="template-in-url"),
    pytest.param('password = os.environ["DB_PASSWORD"]', id="environment-reference"),
    pytest.param('password = "<your-password>"', id="angle-placeholder"),
    pytest.param('password = "changeme"', id="changeme"),
    pytest.param('password = ""', id="empty"),
    pytest.param('api_key = "xxxxxxxxxxxxxxxxxxxx"', id="redacted-x"),
    # test fixtures named as such
    pytest.param(f'FAKE_GITHUB_TOKEN = "{GHP}"', id="fixture-fake-github"),
    pytest.param('DUMMY_PASSWORD = "hunter2!"', id="fixture-dummy-password"),
    pytest.param(f'fixture_aws_key_id = "{AKIA}"', id="fixture-aws"),
    pytest.param(f'mock_client = WebClient(token="{XOXB}")', id="fixture-mock-slack"),
    pytest.param(f'example_secret = "{AWS_SECRET}"', id="fixture-example-secret"),
    # names that only sound like secrets
    pytest.param('token_type = "Bearer"', id="token-type"),
    pytest.param('secret_name = "prod-db-credentials"', id="k8s-secret-name"),
    pytest.param('password_field = "password"', id="form-field-label"),
    pytest.param('tokenizer = "bert-base-uncased"', id="tokenizer"),
    pytest.param('next_token = ")"', id="lexer-token"),
    pytest.param('token = "IDENTIFIER"', id="token-kind-word"),
    pytest.param('cache_key = "user:1234:profile"', id="cache-key"),
    pytest.param('primary_key = "id"', id="primary-key"),
    pytest.param('password_hash = "pbkdf2_sha256$260000$abc$def"', id="password-hash"),
    pytest.param("token = next_token", id="token-reference"),
    pytest.param("        if key in self._cache and password is not None:", id="code-words"),
])
def test_leaves_non_secrets_alone(line: str) -> None:
    assert mask_line(line) == line
    assert find_line_secrets(line) == []


PEM_BODY = ["MIIEowIBAAKCAQEAxk3vL9q2Xm8F0pYt7RtGZ5kq1jN3sW0PaQz4c3sXyZk9jQ2R",
            "kqF8YtRjQm2vX1nB5cZ0aP7wL3dK9sE4fH6gJ8iU0oT2yV5bN1mC7xR4zQ9eW3aS",
            "bN1mC7xR4zQ9eW3aSkqF8YtRjQm2vX1nB5cZ0aP7wL3dK9sE4fH6gJ8iU0oT2yV5",
            "Y3xN=="]
PEM = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *PEM_BODY, "-----END RSA PRIVATE KEY-----"])


def test_masks_a_pem_block_as_one_placeholder_line() -> None:
    text = f'def key() -> str:\n    return """{PEM}"""\n'
    masked = SecretMasker().mask(text)
    assert masked.text == ('def key() -> str:\n    return """-----BEGIN RSA PRIVATE KEY-----\n<secret:private-key>\n'
                           '-----END RSA PRIVATE KEY-----"""\n')
    assert masked.secrets == (Secret("private-key", "\n".join(PEM_BODY)),)


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_masks_a_pem_block_cut_by_a_window(cut: int) -> None:
    """A prompt window may end (prefix) or start (suffix) inside a key: each half is masked."""
    text = f"KEY = '''{PEM}'''\nprint(KEY)\n"
    lines = text.split("\n")
    before, after = "\n".join(lines[: 1 + cut]), "\n".join(lines[1 + cut:])
    masker = SecretMasker()
    for part in (before, after):
        masked = masker.mask(part).text
        assert not any(body in masked for body in PEM_BODY[:3]), masked
        assert "<secret:private-key>" in masked


def test_masks_a_key_body_without_markers_and_an_escaped_one_line_key() -> None:
    masker = SecretMasker()
    assert masker.mask("\n".join(PEM_BODY[:3])).text == "<secret:private-key>"
    one_line = 'KEY = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n"'
    assert masker.mask(one_line).text == 'KEY = "-----BEGIN PRIVATE KEY-----\\n<secret:private-key>\\n-----END PRIVATE KEY-----\\n"'


def test_a_header_constant_is_not_a_key() -> None:
    text = 'PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----"\n\ndef parse(data):\n    return data.split(PEM_HEADER)\n'
    assert SecretMasker().mask(text).text == text


def test_masking_keeps_the_text_otherwise_identical() -> None:
    text = (f'import boto3\n\nAWS_ACCESS_KEY_ID = "{AKIA}"\nAWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\n'
            f'GITHUB = "{GHP}"\n\n\ndef client():\n    return boto3.client("s3")\n')
    masked = SecretMasker().mask(text)
    assert [s.kind for s in masked.secrets] == ["aws-access-key-id", "aws-secret-key", "github-token"]
    expected = (text.replace(AKIA, "<secret:aws-access-key-id>").replace(AWS_SECRET, "<secret:aws-secret-key>")
                .replace(GHP, "<secret:github-token>"))
    assert masked.text == expected


def test_line_results_are_remembered_and_unchanged_text_is_returned_as_is() -> None:
    masker = SecretMasker()
    code = "def f(x):\n    return x + 1\n"
    assert masker.mask(code).text is code
    first = masker.mask(f'password = "hunter2"\n{code}')
    again = masker.mask(f'password = "hunter2"\n{code}x')
    assert first.secrets == again.secrets == (Secret("password", "hunter2"),)


def test_a_suggestion_that_brings_a_secret_back_is_detected() -> None:
    secrets = [Secret("password", "hunter2"), Secret("private-key", "\n".join(PEM_BODY))]
    assert reveals_secret('"hunter2"\n', secrets)
    assert reveals_secret("<secret:password>", [])
    assert reveals_secret(f"    {PEM_BODY[1]}\n", secrets)
    assert not reveals_secret("return connect(password)\n", secrets)


def test_an_edit_gets_the_users_values_back() -> None:
    secrets = [Secret("password", "hunter2"), Secret("aws-access-key-id", AKIA)]
    reply = '```python\ndef f():\n    """Connect."""\n    return connect("<secret:aws-access-key-id>", "<secret:password>")\n```'
    assert restore_secrets(reply, secrets) == reply.replace("<secret:aws-access-key-id>", AKIA).replace(
        "<secret:password>", "hunter2")
    assert restore_secrets("no placeholders", secrets) == "no placeholders"
    two = [*secrets, Secret("password", "other-Pa55")]
    assert restore_secrets(reply, two) is None  # which password? never guess
    assert restore_secrets("<secret:jwt>", secrets) is None



@pytest.mark.parametrize("line", [
    pytest.param("a" * 20_000 + "key", id="one-long-word"),
    pytest.param(".".join(["token"] * 4_000), id="dotted-names"),
    pytest.param("token=" * 4_000, id="repeated-assignments"),
])
def test_long_lines_are_scanned_in_linear_time(line: str) -> None:
    """A minified line in the prompt must not stall the editor (a backtracking name pattern took seconds)."""
    started = time.perf_counter()
    SecretMasker().mask(line)
    assert time.perf_counter() - started < 1.0
