"""Made-up demo catalog for a first run with no supplier token (all names are invented)."""

import random

from ..clients.records import parse_element
from ..models import PriceRule, Product
from ..rules import is_price_on_request
from .pricing import reprice_products
from .sync import sync_brands, sync_categories, upsert_products

CATEGORIES = [
    {"id": 100, "name": "Компьютеры", "level": 1, "left": 1, "right": 8},
    {"id": 110, "name": "Ноутбуки", "level": 2, "left": 2, "right": 3},
    {"id": 120, "name": "Мониторы", "level": 2, "left": 4, "right": 5},
    {"id": 130, "name": "Периферия", "level": 2, "left": 6, "right": 7},
    {"id": 200, "name": "Смартфоны и гаджеты", "level": 1, "left": 9, "right": 14},
    {"id": 210, "name": "Смартфоны", "level": 2, "left": 10, "right": 11},
    {"id": 220, "name": "Аксессуары", "level": 2, "left": 12, "right": 13},
]
BRANDS = ["Demo", "Nordlight", "Qazaq Tech", "Steppe Audio"]
ITEMS = [
    (110, "Ноутбук {b} 15 8/512 серый", 161000, 189990),
    (110, "Ноутбук {b} 14 16/1024", 289000, 329990),
    (120, 'Монитор {b} 27" IPS', 84000, 99990),
    (120, 'Монитор {b} 24" 144 Гц', 62000, 74990),
    (130, "Клавиатура {b} беспроводная", 7400, 9990),
    (130, "Мышь {b} & коврик (набор)", 3100, 4490),
    (210, "Смартфон {b} A5 128 ГБ", 98000, 119990),
    (220, "Кабель USB-C <-> Lightning 1 м", 1500, 2490),
    (220, "Чехол {b} для смартфона", 1, 1),
]


def demo_elements(count: int = 60) -> list[dict]:
    rng = random.Random(20260115)  # fixed seed: the same demo data every time
    elements = []
    for index in range(count):
        category, pattern, price1, price2 = ITEMS[index % len(ITEMS)]
        brand = BRANDS[index % len(BRANDS)]
        quantity = rng.choice([0, 0, 3, 7, 12, ">50", ">100", "<10"])
        if not is_price_on_request(price1):
            price1 += 100 * (index // len(ITEMS))
        elements.append(
            {
                "article": 10001 + index,
                "article_pn": f"DM-{index:04d}/X",
                "name": pattern.format(b=brand),
                "full_name": pattern.format(b=brand) + f", модель {index}",
                "category": category,
                "brand": brand,
                "price1": price1,
                "price2": price2,
                "quantity": quantity,
                "isnew": int(index % 11 == 0),
            }
        )
    return elements


def load_demo_catalog() -> dict:
    from backoffice.models import SyncRun

    if not PriceRule.objects.exists():
        PriceRule.objects.create(
            name="Базовая наценка 15%",
            markup_percent=15,
            min_margin=500,
            rounding=PriceRule.Rounding.TEN,
        )
    category_map = sync_categories(CATEGORIES)
    brand_map = sync_brands([{"name": name} for name in BRANDS])
    run = SyncRun(kind=SyncRun.Kind.CATALOG)
    from .pricing import Pricer

    records = [(parse_element(raw), raw) for raw in demo_elements()]
    upsert_products(
        records, run=run, category_map=category_map, brand_map=brand_map, pricer=Pricer()
    )
    reprice_products()
    return {"products": Product.objects.count(), **run.counts}
