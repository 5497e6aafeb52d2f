from django.core.management.base import BaseCommand, CommandError

from backoffice.core.logging import mask_text
from catalog.services.suppliers import SupplierSettingsError, save_pricefile_supplier
from catalog.suppliers.pricefile.mapping import MappingError, parse_map_options


class Command(BaseCommand):
    help = (
        "Add a price-file supplier, or update it when CODE exists (idempotent). "
        "Credentials for the file come from the environment variable named by --auth-env "
        "(user:password, or a token put where the URL says {token}); never from the URL."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", help="short Latin name, e.g. akcent")
        parser.add_argument("--kind", default="pricefile", choices=["pricefile"])
        parser.add_argument("--name", default="", help="shown to staff (default: the code)")
        parser.add_argument("--url", default=None, help="where the price file is fetched")
        parser.add_argument("--format", default=None, choices=["yml", "xlsx", "csv"])
        parser.add_argument(
            "--auth-env", default=None, help="NAME of the variable with user:password or token"
        )
        parser.add_argument(
            "--map",
            nargs="*",
            default=None,
            metavar="FIELD=COLUMN",
            help="column mapping, e.g. article=Артикул price=Цена stock=Остаток "
            "(fields: article name price retail_price stock available part_number brand "
            "category barcode; options: header_row sheet delimiter encoding)",
        )
        parser.add_argument("--sku-prefix", default=None)
        parser.add_argument(
            "--queue-unmatched",
            action="store_true",
            help="offers matching no product wait for staff instead of becoming new products",
        )
        parser.add_argument("--disable", action="store_true", help="switch the supplier off")

    def handle(self, *args, code, **options):
        try:
            mapping = parse_map_options(options["map"]) if options["map"] is not None else None
            supplier, created = save_pricefile_supplier(
                code=code,
                name=options["name"] or None,
                url=options["url"],
                file_format=options["format"],
                auth_env=options["auth_env"],
                mapping=mapping,
                sku_prefix=options["sku_prefix"],
                create_unmatched=False if options["queue_unmatched"] else None,
                enabled=False if options["disable"] else None,
            )
        except (MappingError, SupplierSettingsError) as exc:
            raise CommandError(f"failed: {exc}", returncode=1) from None
        verb = "added" if created else "updated"
        where = mask_text(supplier.url or "(upload)")
        self.stdout.write(
            f"supplier {supplier.code} {verb}: {supplier.format} {where} "
            f"(auth: {supplier.auth_env or '—'}, SKU prefix: {supplier.sku_prefix or '—'})"
        )
