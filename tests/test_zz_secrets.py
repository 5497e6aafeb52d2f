"""Runs last: nothing the suite logged contains a configured test secret.

The test logs each secret once itself (as a careless call would), so it exercises the
masking pipeline even when run alone; run with the suite it also covers every line the
other tests logged.
"""

import logging
import os

from tests.conftest import SUITE_LOG

TEST_SECRETS = [
    os.environ["SECRET_KEY"],
    os.environ["ALSTYLE_TOKEN"],
    os.environ["KASPI_SHOP_TOKEN"],
    os.environ["PAYMENTS_WEBHOOK_SECRET"],
]


def test_no_secret_in_any_log_line_of_the_suite():
    logger = logging.getLogger("tests.careless")
    for secret in TEST_SECRETS:
        logger.warning("calling with token=%s and header X-Auth-Token: %s", secret, secret)
        logger.warning("raw %s", secret)
    text = SUITE_LOG.getvalue()
    assert text.count("tests.careless") == 2 * len(TEST_SECRETS)
    for secret in TEST_SECRETS:
        assert secret not in text
