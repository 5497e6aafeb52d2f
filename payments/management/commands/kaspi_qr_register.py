from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backoffice.core.exceptions import BackofficeError
from backoffice.core.logging import mask
from payments.clients import KaspiQrClient
from payments.models import KaspiQrDevice


class Command(BaseCommand):
    help = (
        "Link our cash register to a Kaspi Pay trade point (Kaspi QR partner API) and store "
        "the device token. Without --trade-point, lists the trade points."
    )

    def add_arguments(self, parser):
        parser.add_argument("--trade-point", help="TradePointId to register at")
        parser.add_argument("--device-id", default=settings.KASPI_QR_DEVICE_ID)

    def handle(self, *args, trade_point, device_id, **options):
        try:
            client = KaspiQrClient()
            points = client.trade_points()
            if not trade_point:
                for point in points:
                    self.stdout.write(f"{point.get('TradePointId')}: {point.get('TradePointName')}")
                if not points:
                    raise CommandError("no trade points: create one in the Kaspi Pay app")
                self.stdout.write("Run again with --trade-point ID.")
                return
            # Send the id exactly as the list returned it (a number), not the typed text.
            point = next(
                (p for p in points if str(p.get("TradePointId")).strip() == trade_point.strip()),
                None,
            )
            if point is None:
                known = ", ".join(str(p.get("TradePointId")) for p in points) or "—"
                raise CommandError(
                    f"trade point {trade_point!r} is not in Kaspi's list (known: {known})"
                )
            token = client.register_device(
                device_id=device_id, trade_point_id=point.get("TradePointId")
            )
        except BackofficeError as exc:
            raise CommandError(str(exc)) from None
        if not token:
            raise CommandError("Kaspi returned no device token")
        names = {str(p.get("TradePointId")): p.get("TradePointName") or "" for p in points}
        KaspiQrDevice.objects.filter(active=True).exclude(device_id=device_id).update(active=False)
        KaspiQrDevice.objects.update_or_create(
            device_id=device_id,
            defaults={
                "trade_point_id": str(point.get("TradePointId")),
                "trade_point_name": names.get(str(trade_point), ""),
                "token": token,
                "active": True,
            },
        )
        self.stdout.write(f"registered {device_id}; token {mask(token)} stored")
