"""Adding and changing suppliers (add_supplier, the admin): one validated, audited path."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from backoffice.core.audit import audit
from backoffice.core.exceptions import BackofficeError

from ..models import Supplier
from ..suppliers.pricefile import mapping as mapping_module
from ..suppliers.pricefile.download import url_credentials_problem
from ..suppliers.pricefile.parsers import FORMATS

AUDITED = ["name", "kind", "enabled", "url", "format", "auth_env", "mapping", "sku_prefix"]
AUDITED += ["create_unmatched"]


class SupplierSettingsError(BackofficeError):
    pass


def check_pricefile_settings(*, code: str, url: str, file_format: str, auth_env: str) -> None:
    """Refuse what would not work or would store a secret in clear."""
    if code == Supplier.ALSTYLE:
        raise SupplierSettingsError(_("alstyle is the Al-Style API supplier, not a price file."))
    if file_format not in FORMATS:
        raise SupplierSettingsError(_("Give the file format: --format yml, xlsx or csv."))
    if url:
        problem = url_credentials_problem(url)
        if problem:
            raise SupplierSettingsError(problem)
    if auth_env and not auth_env.replace("_", "").isalnum():
        raise SupplierSettingsError(
            _(
                "--auth-env is the NAME of an environment variable (letters, digits, _), not "
                "the secret itself."
            )
        )


def save_pricefile_supplier(
    *,
    code: str,
    name: str | None = None,
    url: str | None = None,
    file_format: str | None = None,
    auth_env: str | None = None,
    mapping: dict | None = None,
    sku_prefix: str | None = None,
    create_unmatched: bool | None = None,
    enabled: bool | None = None,
    upload=None,
    user=None,
) -> tuple[Supplier, bool]:
    """Create the price-file supplier `code`, or update the given settings of an existing
    one (None = keep). Returns (supplier, created); audited."""
    with transaction.atomic():
        supplier = Supplier.objects.select_for_update().filter(code=code).first()
        created = supplier is None
        if created:
            supplier = Supplier(code=code, name=code, kind=Supplier.Kind.PRICEFILE)
        before = {field: getattr(supplier, field) for field in AUDITED}
        changes = {
            "name": name,
            "url": url,
            "format": file_format,
            "auth_env": auth_env,
            "mapping": mapping_module.validate(mapping) if mapping is not None else None,
            "sku_prefix": sku_prefix,
            "create_unmatched": create_unmatched,
            "enabled": enabled,
        }
        for field, value in changes.items():
            if value is not None:
                setattr(supplier, field, value)
        if upload is not None:
            supplier.upload = upload
        check_pricefile_settings(
            code=supplier.code,
            url=supplier.url,
            file_format=supplier.format,
            auth_env=supplier.auth_env,
        )
        if supplier.sku_prefix and not re.fullmatch(r"[A-Za-z0-9]+", supplier.sku_prefix):
            raise SupplierSettingsError(_("The SKU prefix takes Latin letters and digits only."))
        try:
            supplier.full_clean(exclude=["upload"])
        except ValidationError as exc:
            raise SupplierSettingsError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        supplier.save()
        after = {field: getattr(supplier, field) for field in AUDITED}
        if upload is not None:
            after["upload"] = supplier.upload.name
        if created or after != before:
            audit(
                user=user,
                action="supplier.add" if created else "supplier.change",
                obj=supplier,
                before=None if created else before,
                after=after,
            )
    return supplier, created


# --- Preview of the first rows (admin) ---------------------------------------------------------


def preview_supplier(supplier: Supplier, *, mapping: dict | None = None, limit: int = 10):
    """The first rows of the supplier's file read with `mapping` (default: its own), for
    the admin; writes nothing. The uploaded file, else the file at its URL streamed: a YML
    or CSV file only until `limit` rows are parsed, an XLSX file (read whole) only up to
    PRICEFILE_PREVIEW_MAX_MB; one attempt, PRICEFILE_PREVIEW_SECONDS in all (see
    download.open_preview). Never raises."""
    from backoffice.core.exceptions import ExternalServiceError

    from ..suppliers.pricefile.adapter import PriceFileAdapter
    from ..suppliers.pricefile.download import copy_upload, open_preview
    from ..suppliers.pricefile.parsers import PriceFileError, preview

    path = None
    chosen = supplier.mapping if mapping is None else mapping
    with translation.override(settings.LANGUAGE_CODE):
        try:
            suffix = f".{supplier.format}"
            if supplier.upload:
                path = copy_upload(supplier.upload, suffix=suffix)
            elif supplier.url:
                whole = supplier.format == Supplier.Format.XLSX
                with open_preview(
                    supplier.url,
                    auth_env=supplier.auth_env,
                    supplier_name=supplier.name or supplier.code,
                    whole=whole,
                ) as stream:
                    if not whole:
                        return preview(stream, supplier.format, chosen, limit=limit)
                    path = stream.save(suffix=suffix)
            else:
                path = PriceFileAdapter(supplier).fetch_file()  # raises the plain reason
            return preview(path, supplier.format, chosen, limit=limit)
        except (PriceFileError, ExternalServiceError, OSError) as exc:
            return {"rows": [], "error": str(exc), "headers": [], "header_row": None, "mapping": {}}
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
