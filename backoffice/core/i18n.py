"""The shop's language for what services store or raise to staff."""

import functools

from django.conf import settings
from django.utils import translation


def in_shop_language(func):
    """Run `func` in the shop's language (settings.LANGUAGE_CODE, read at call time): the
    text it stores on a model or raises to staff reads in that language, whichever one the
    request or the worker happens to run in."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return func(*args, **kwargs)

    return wrapper
