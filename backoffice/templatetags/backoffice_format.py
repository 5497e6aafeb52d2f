"""{% load backoffice_format %}: {{ order.total_price|money }}, {{ run.created_at|local_time }}."""

from django import template

from backoffice.core import formats

register = template.Library()


@register.filter
def money(value):
    return formats.money(value)


@register.filter
def digits(value):
    return formats.group_digits(value)


@register.filter
def local_time(value, fmt="%d.%m.%Y %H:%M"):
    return formats.local_time(value, fmt)
