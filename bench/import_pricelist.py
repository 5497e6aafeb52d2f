"""Benchmark: a shop's 50,000-offer old Kaspi price list against 50,000 products.

Prints, for the dry run (read + match), the real import (match + write in one transaction)
and a re-import of the same file (nothing to change): the time and RSS growth of a fresh
child process (targets: matched in ≤ 10 s, RSS growth ≤ 100 MB, streamed parse), and the
counts per rule. Usage: DATABASE_URL=postgres://…/db python bench/import_pricelist.py [N]
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 50_000
ROOT = Path(__file__).resolve().parents[1]
CYRILLIC = "АВСЕНКМОРТХ"


def part_number(i: int) -> str:
    """Part numbers as distributors write them: spaces, slashes, dashes, Cyrillic."""
    kind = i % 5
    if kind == 0:
        return f"ST/UPC-{i} MM OM1 62.5/125 3.0мм"
    if kind == 1:
        return f"DS-2CD{i}G0-I 4mm"
    if kind == 2:
        return f"{CYRILLIC[i % len(CYRILLIC)]}B{i}/W"  # a Cyrillic look-alike first
    if kind == 3:
        return f"KB {i}"
    return f"PN{i}"


def populate(path: Path) -> None:
    from lxml import etree

    from catalog.models import LegacyOffer, PriceListImport

    LegacyOffer.objects.all().delete()
    PriceListImport.objects.all().delete()
    _setup.insert_products(
        N,
        lambda i: f"Товар {i} модель {i % 997}",
        lambda i: {"article_pn": part_number(i)},
    )
    ns = "kaspiShopping"
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{ns}}}kaspi_catalog", {"date": "string"}, nsmap={None: ns}):
            with xf.element(f"{{{ns}}}company"):
                xf.write("Old Shop")
            with xf.element(f"{{{ns}}}merchantid"):
                xf.write("OldShop")
            with xf.element(f"{{{ns}}}offers"):
                for i in range(N):
                    share = i % 20
                    if share < 12:  # 60 %: the part number, re-typed (case, spaces)
                        sku = part_number(i).lower() if share % 2 else part_number(i)
                    elif share < 16:  # 20 %: the article with our old prefix
                        sku = f"AS-{100000 + i}"
                    elif share < 19:  # 15 %: Kaspi-made SKU, found by the model name
                        sku = f"{130000000 + i}_{673000000 + i}"
                    else:  # 5 %: nothing of ours
                        sku = f"GONE-{i}"
                    model = f"Товар {i} модель {i % 997}" if share < 19 else f"Старый {i}"
                    with xf.element(f"{{{ns}}}offer", {"sku": sku}):
                        with xf.element(f"{{{ns}}}model"):
                            xf.write(model)
                        with xf.element(f"{{{ns}}}brand"):
                            xf.write(f"Brand {i % 50}")
                        with xf.element(f"{{{ns}}}availabilities"):
                            for store in ("PP1", "PP2"):
                                attrs = {
                                    "available": "yes" if i % 7 else "no",
                                    "storeId": store,
                                    "stockCount": f"{i % 9}.0",
                                }
                                with xf.element(f"{{{ns}}}availability", attrs):
                                    pass
                        if i % 10 == 0:
                            with xf.element(f"{{{ns}}}cityprices"):
                                for city in ("750000000", "710000000"):
                                    with xf.element(f"{{{ns}}}cityprice", {"cityId": city}):
                                        xf.write(str(2000 + i))
                        else:
                            with xf.element(f"{{{ns}}}price"):
                                xf.write(str(2000 + i))


def measure(path: str, dry_run: bool) -> None:
    """Child process: one import, its time and RSS growth as JSON on stdout."""
    _setup.setup()
    from catalog.services.pricelist_import import import_pricelist

    before = _setup.current_rss_mb()
    started = time.perf_counter()
    result = import_pricelist(path=path, dry_run=dry_run)
    elapsed = time.perf_counter() - started
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM"))
    print(
        json.dumps(
            {
                "seconds": round(elapsed, 2),
                "rss_growth_mb": round(peak - before, 1),
                "counts": result.counts,
                "changed_skus": result.changed_skus,
                "unchanged": result.unchanged,
            }
        )
    )


def run_child(path: Path, dry_run: bool) -> dict:
    args = [sys.executable, __file__, "--measure", str(path)] + (["--dry-run"] if dry_run else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--measure" in sys.argv:
        measure(sys.argv[sys.argv.index("--measure") + 1], "--dry-run" in sys.argv)
        return
    _setup.setup()
    path = Path(f"/tmp/bench-import-pricelist-{os.getpid()}.xml")
    started = time.perf_counter()
    populate(path)
    print(
        f"set-up: {N} products + an old price list of {N} offers "
        f"({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    try:
        for label, dry_run in (("dry run", True), ("import", False), ("re-import", False)):
            figures = run_child(path, dry_run)
            print(
                f"{label:>9}: {figures['seconds']:.2f} s (target ≤ 10 s, "
                f"{figures['seconds'] / 10:.0%} of it), RSS growth {figures['rss_growth_mb']} MB "
                f"(target ≤ 100 MB, {figures['rss_growth_mb'] / 100:.0%}); "
                f"SKUs changed {figures['changed_skus']}, unchanged={figures['unchanged']}"
            )
        print(f"   counts: {json.dumps(figures['counts'])}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
