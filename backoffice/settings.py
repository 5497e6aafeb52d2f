"""Settings for kaspi-backoffice.

Every value is read from the environment (or a `.env` file beside manage.py) through
django-environ and has a development default; `.env.example` documents each one.
"""

import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")


def env_or(name: str, default: str) -> str:
    """A string setting where an empty value (as left in a copied .env.example) means the
    default, not "nothing"."""
    return env.str(name, default="") or default


# --- Core -------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment or .env "
            "(a long random string), or set DEBUG=1 for a development run."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL of payment links; by default the local server on PORT (`make run PORT=…`).
SITE_URL = env_or("SITE_URL", f"http://127.0.0.1:{env_or('PORT', '8000')}").rstrip("/")

INSTALLED_APPS = [
    "backoffice.apps.BackofficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "backoffice.apps.LoginLocksConfig",  # django-axes
    "backoffice.apps.BackofficeConfig",
    "catalog.apps.CatalogConfig",
    "orders.apps.OrdersConfig",
    "payments.apps.PaymentsConfig",
]

MIDDLEWARE = [
    "backoffice.core.middleware.RealIpMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "backoffice.core.middleware.ShopLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "backoffice.core.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: turns a locked login into our lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASES = {
    "default": environ.Env.db_url_config(
        env_or("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the busy timeout and
    # IMMEDIATE transactions keep the ORM broker clear of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared between web, worker and cron processes) ------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "backoffice",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "backoffice_cache",
        }
    }

# --- Auth -------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# django-axes checks the lock first, whatever the password (backoffice/core/auth.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_HANDLER = "backoffice.core.auth.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = "backoffice.core.auth.failure_limit"
AXES_COOLOFF_TIME = "backoffice.core.auth.cool_off"
AXES_LOCKOUT_CALLABLE = "backoffice.core.auth.lockout_response"
# REMOTE_ADDR, where RealIpMiddleware has put the client's address behind a trusted proxy.
AXES_CLIENT_IP_CALLABLE = "backoffice.core.auth.client_ip"
AXES_ENABLE_ADMIN = False  # our own list of locks (backoffice/admin.py)
AXES_VERBOSE = False

# --- I18N -------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Almaty")
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_or("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_or("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"

# --- Security (production) --------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Monitoring probes and Kaspi's downloader may come over plain HTTP from inside.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
# Proxies (nginx) whose X-Real-IP header is believed; empty = nobody's.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Our own pages (not the admin): nothing from elsewhere, inline code only with the nonce.
CSP_POLICY = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])
if not SECURE_HSTS_PRELOAD:
    # Preload is a one-way door (browser lists); opt in with SECURE_HSTS_PRELOAD=1.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- Shared HTTP client -----------------------------------------------------------------
HTTP_CONNECT_TIMEOUT = env.float("HTTP_CONNECT_TIMEOUT", default=10.0)
HTTP_READ_TIMEOUT = env.float("HTTP_READ_TIMEOUT", default=30.0)
HTTP_RETRIES = env.int("HTTP_RETRIES", default=3)
HTTP_BACKOFF_FACTOR = env.float("HTTP_BACKOFF_FACTOR", default=1.0)
HTTP_BACKOFF_MAX = env.float("HTTP_BACKOFF_MAX", default=60.0)
HTTP_USER_AGENT = env_or(
    "HTTP_USER_AGENT",
    # A browser-like agent: Kaspi hangs on requests without one (docs/kaspi-shop-api.md).
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36 kaspi-backoffice/1.0",
)

# --- Price-file suppliers (catalog/suppliers/pricefile/) ----------------------------------
# A distributor's price file is one large download: a longer read timeout than the APIs',
# and a size cap so a wrong URL (a video, an endless stream) cannot fill the disk.
PRICEFILE_READ_TIMEOUT = env.float("PRICEFILE_READ_TIMEOUT", default=120.0)
PRICEFILE_MAX_MB = env.int("PRICEFILE_MAX_MB", default=200)
# The admin preview of the first rows runs inside a web request: a YML or CSV file is read
# only until the rows are found, an XLSX file (a zip, read whole) only up to this size.
PRICEFILE_PREVIEW_MAX_MB = env.float("PRICEFILE_PREVIEW_MAX_MB", default=20.0)
# ... and for at most this many seconds in all (also each read's timeout), not the sync's
# PRICEFILE_READ_TIMEOUT: a slow file server must not hold a web worker for minutes.
PRICEFILE_PREVIEW_SECONDS = env.float("PRICEFILE_PREVIEW_SECONDS", default=15.0)

# --- Background jobs --------------------------------------------------------------------
Q_BROKER = env.str("Q_BROKER", default="orm")
if Q_BROKER not in {"orm", "redis"}:
    raise ImproperlyConfigured("Q_BROKER must be 'orm' or 'redis'.")
if Q_BROKER == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("Q_BROKER=redis needs REDIS_URL (e.g. redis://127.0.0.1:6379/0).")
Q_TIMEOUT = env.int("Q_TIMEOUT", default=1800)
Q_CLUSTER = {
    "name": env.str("Q_NAME", default="backoffice"),
    # Enough workers that a long catalog sync never starves short jobs (payment polls).
    "workers": env.int("Q_WORKERS", default=4),
    "timeout": Q_TIMEOUT,
    # retry must exceed timeout, otherwise a slow task is handed out twice.
    "retry": env.int("Q_RETRY", default=Q_TIMEOUT + 300),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=2),
    # A stopped worker must not replay every missed run when it comes back.
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "ack_failures": True,
    "label": _("Tasks"),
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env.float("Q_POLL", default=1.0)

# Single-flight job locks: a lock whose holder sent no heartbeat for this long is stale.
JOB_LOCK_STALE_SECONDS = env.int("JOB_LOCK_STALE_SECONDS", default=600)

# --- Health -----------------------------------------------------------------------------
HEALTH_CHECKS = [
    "backoffice.core.health.check_database",
    "backoffice.core.health.check_cache",
    "backoffice.core.health.check_task_worker",
    "backoffice.core.health.check_schedules",
    "catalog.health.check_catalog_sync",
    "catalog.health.check_feed",
    "orders.health.check_order_import",
]
HEALTH_WORKER_MAX_AGE = env.int("HEALTH_WORKER_MAX_AGE", default=180)

# --- Al-Style supplier API (docs/alstyle-api.md) ----------------------------------------
ALSTYLE_API_URL = env.str("ALSTYLE_API_URL", default="https://api.al-style.kz/api/")
ALSTYLE_TOKEN = env.str("ALSTYLE_TOKEN", default="")
ALSTYLE_MIN_INTERVAL = env.float("ALSTYLE_MIN_INTERVAL", default=5.0)
# Added to every gap between two Al-Style calls (any process, any call type, retries too):
# calls sent exactly ALSTYLE_MIN_INTERVAL apart arrive a hair early and get 403.
ALSTYLE_SLOT_MARGIN = env.float("ALSTYLE_SLOT_MARGIN", default=0.5)
ALSTYLE_PAGE_SIZE = min(env.int("ALSTYLE_PAGE_SIZE", default=250), 250)
ALSTYLE_MAX_PAGES = env.int("ALSTYLE_MAX_PAGES", default=1000)
ALSTYLE_RATE_LIMIT_PAUSE = env.float("ALSTYLE_RATE_LIMIT_PAUSE", default=10.0)
ALSTYLE_RATE_LIMIT_RETRIES = env.int("ALSTYLE_RATE_LIMIT_RETRIES", default=4)
# An unknown field name makes Al-Style answer HTTP 500: drop one here if syncs start failing.
ALSTYLE_ADDITIONAL_FIELDS = env.list("ALSTYLE_ADDITIONAL_FIELDS", default=["brand"])
ALSTYLE_STOCK_CHUNK = env.int("ALSTYLE_STOCK_CHUNK", default=250)
if not 1 <= ALSTYLE_STOCK_CHUNK <= 250:
    # Al-Style refuses more than 250 articles per quantity-price call (HTTP 400 «Не более
    # 250 артикулов»): every stock run would fail, so refuse to start instead.
    raise ImproperlyConfigured(
        f"ALSTYLE_STOCK_CHUNK={ALSTYLE_STOCK_CHUNK} is outside 1-250: Al-Style accepts at most "
        "250 articles per quantity-price call. Set a value from 1 to 250 (default 250)."
    )
# A complete catalog sync that would unlist more than this share of the products listed
# before it (a partial listing, a wrong filter, a supplier incident) marks nothing
# vanished: the run is held and staff confirm it in the admin.
CATALOG_VANISH_LIMIT = env.float("CATALOG_VANISH_LIMIT", default=0.2)
CATALOG_SYNC_INTERVAL_MINUTES = env.int("CATALOG_SYNC_INTERVAL_MINUTES", default=30)
STOCK_SYNC_INTERVAL_MINUTES = env.int("STOCK_SYNC_INTERVAL_MINUTES", default=10)
# The supplier budget (catalog/services/budget.py): Al-Style allows one call per
# ALSTYLE_MIN_INTERVAL + ALSTYLE_SLOT_MARGIN seconds for everything; the scheduled syncs
# plan within that, less a reserve per hour for purchases (cart), card data and connection
# checks. Products on sale on Kaspi, in open orders or changed recently are kept at most
# STOCK_HOT_MAX_AGE_MINUTES old; the full listing always gets CATALOG_LISTING_MIN_SHARE of
# the sync budget and spans several runs when it must; no run lasts longer than
# SUPPLIER_RUN_MAX_SECONDS (well under Q_TIMEOUT).
ALSTYLE_RESERVE_CALLS_PER_HOUR = env.int("ALSTYLE_RESERVE_CALLS_PER_HOUR", default=60)
STOCK_HOT_MAX_AGE_MINUTES = env.int("STOCK_HOT_MAX_AGE_MINUTES", default=30)
CATALOG_RECENT_HOURS = env.int("CATALOG_RECENT_HOURS", default=24)
CATALOG_LISTING_MIN_SHARE = env.float("CATALOG_LISTING_MIN_SHARE", default=0.15)
SUPPLIER_RUN_MAX_SECONDS = env.int("SUPPLIER_RUN_MAX_SECONDS", default=Q_TIMEOUT // 2)
CATALOG_SYNC_MAX_AGE_MINUTES = env.int("CATALOG_SYNC_MAX_AGE_MINUTES", default=90)

# --- Pricing and the Kaspi price list (docs/kaspi-price-list.md) ------------------------
SKU_PREFIX = env.str("SKU_PREFIX", default="AS")
# SKUs we make: Latin letters and digits, 1-20 chars (safe everywhere). Other SKUs a shop
# already sells under are kept (up to 64 chars); the admin only warns about them.
SKU_PATTERN = env.str("SKU_PATTERN", default=r"^[A-Za-z0-9]{1,20}$")
PRICE_ANOMALY_SHARE = env.float("PRICE_ANOMALY_SHARE", default=0.5)
# Break-even price = ceil(dealer price / (1 - commission - tax)) (catalog.services.pricing).
# One flat Kaspi commission for now (12.5 % = the with-VAT rate of most electronics,
# docs/kaspi-offers.md §9); the tax is a share of turnover (simplified regime: 3 %).
KASPI_COMMISSION_PERCENT = Decimal(env.str("KASPI_COMMISSION_PERCENT", default="12.5"))
SALES_TAX_PERCENT = Decimal(env.str("SALES_TAX_PERCENT", default="3"))
if not 0 <= KASPI_COMMISSION_PERCENT + SALES_TAX_PERCENT < 100:
    raise ImproperlyConfigured(
        "KASPI_COMMISSION_PERCENT + SALES_TAX_PERCENT must be at least 0 and below 100."
    )
KASPI_MERCHANT_ID = env.str("KASPI_MERCHANT_ID", default="DemoShop")
KASPI_COMPANY_NAME = env.str("KASPI_COMPANY_NAME", default="Demo Electronics")
KASPI_STORE_IDS = env.list("KASPI_STORE_ID", default=["PP1"])
# Share (percent) of each product's free units each pickup point sells, e.g. PP1=70,PP2=30
# (adding up to 100), so no unit is promised at two points. Empty: everything at the
# first point, the others get available="no".
KASPI_STORE_SHARES = {
    store.strip(): share.strip()
    for store, share in env.dict("KASPI_STORE_STOCK", default={}).items()
    if store.strip()
}
try:
    KASPI_STORE_SHARES = {store: Decimal(share) for store, share in KASPI_STORE_SHARES.items()}
except ArithmeticError:
    raise ImproperlyConfigured(
        "KASPI_STORE_STOCK: each share must be a number, e.g. PP1=70,PP2=30"
    ) from None
if KASPI_STORE_SHARES and (
    set(KASPI_STORE_SHARES) - {store.strip() for store in KASPI_STORE_IDS}
    or any(not 0 <= share <= 100 for share in KASPI_STORE_SHARES.values())
    or sum(KASPI_STORE_SHARES.values()) != 100
):
    raise ImproperlyConfigured(
        "KASPI_STORE_STOCK must give each pickup point of KASPI_STORE_ID a share from 0 to "
        f"100, adding up to 100 (e.g. PP1=70,PP2=30); got {env.str('KASPI_STORE_STOCK')!r} "
        f"for KASPI_STORE_ID={','.join(KASPI_STORE_IDS)}"
    )
# Supplier warehouses each pickup point sells from, e.g. PP1=panfilov,PP2=almaty2 (several
# for one point joined by "+": PP1=panfilov+almaty3). Set: a product whose chosen offer
# reports stock per warehouse gets at each point the units of its warehouses (within its
# free units); others keep KASPI_STORE_STOCK's shares. Empty (the default): shares only.
KASPI_STORE_WAREHOUSES = {
    store.strip(): tuple(code.strip() for code in codes.split("+") if code.strip())
    for store, codes in env.dict("KASPI_STORE_WAREHOUSES", default={}).items()
    if store.strip()
}
if set(KASPI_STORE_WAREHOUSES) - {store.strip() for store in KASPI_STORE_IDS} or not all(
    KASPI_STORE_WAREHOUSES.values()
):
    raise ImproperlyConfigured(
        "KASPI_STORE_WAREHOUSES must map pickup points of KASPI_STORE_ID to supplier "
        f"warehouse codes (e.g. PP1=panfilov,PP2=almaty2); got "
        f"{env.str('KASPI_STORE_WAREHOUSES')!r} for KASPI_STORE_ID={','.join(KASPI_STORE_IDS)}"
    )
FEED_DIR = Path(env_or("FEED_DIR", str(MEDIA_ROOT / "feed")))
FEED_FILENAME = "kaspi.xml"
FEED_MODEL_MAX_LENGTH = env.int("FEED_MODEL_MAX_LENGTH", default=120)
FEED_PREORDER_MAX_DAYS = min(env.int("FEED_PREORDER_MAX_DAYS", default=30), 30)
FEED_UNAVAILABLE_GRACE_DAYS = env.int("FEED_UNAVAILABLE_GRACE_DAYS", default=30)
# Cut-over (import_kaspi_pricelist): old offers we could not match stay in our price list
# as they were for this many days; files larger than this are refused.
CUTOVER_GRACE_DAYS = env.int("CUTOVER_GRACE_DAYS", default=30)
PRICELIST_IMPORT_MAX_MB = env.int("PRICELIST_IMPORT_MAX_MB", default=100)
# The city whose price goes into the Kaspi Excel export (one price column) when offers
# carry cityprices; 750000000 is Almaty in Kaspi's sample.
KASPI_HOME_CITY_ID = env.str("KASPI_HOME_CITY_ID", default="750000000")
FEED_SHRINK_FLOOR = env.float("FEED_SHRINK_FLOOR", default=0.5)
FEED_MAX_AGE_MINUTES = env.int("FEED_MAX_AGE_MINUTES", default=120)
FEED_AUTH_USER = env.str("FEED_AUTH_USER", default="")
FEED_AUTH_PASSWORD = env.str("FEED_AUTH_PASSWORD", default="")
# Which /feed.xml downloads are Kaspi's (we do not know in advance): words of its
# User-Agent and its addresses (IPs or networks), comma lists. Empty: every download counts
# (unverified); set: only matching ones, and the last other download is shown apart.
KASPI_FEED_USER_AGENTS = env.list("KASPI_FEED_USER_AGENTS", default=[])
KASPI_FEED_ADDRESSES = env.list("KASPI_FEED_ADDRESSES", default=[])
FEED_BRAND_PLACEHOLDER = env.str("FEED_BRAND_PLACEHOLDER", default="")
# The structural check of every build (docs/kaspi-price-list.md §5.5): "writer" (default)
# folds it into the writer (one offer per SKU, every value checked and escaped through the
# one tested function, offers counted again from the written bytes); "expat" also parses
# every byte in a child process as it is written (well-formedness re-proved at run time,
# about 0.2 s of CPU per 100,000 offers).
FEED_OUTPUT_CHECK = env.str("FEED_OUTPUT_CHECK", default="writer")
if FEED_OUTPUT_CHECK not in ("writer", "expat"):
    raise ImproperlyConfigured(
        f"FEED_OUTPUT_CHECK must be writer or expat; got {FEED_OUTPUT_CHECK!r}"
    )

# --- Kaspi Shop API v2: orders (docs/kaspi-shop-api.md) --------------------------------
KASPI_SHOP_API_URL = env.str("KASPI_SHOP_API_URL", default="https://kaspi.kz/shop/api/v2")
KASPI_SHOP_TOKEN = env.str("KASPI_SHOP_TOKEN", default="")
# Only for cabinets holding several shops (unconfirmed header; sent only when set).
KASPI_MERCHANT_UID = env.str("KASPI_MERCHANT_UID", default="")
KASPI_USER_AGENT = HTTP_USER_AGENT
KASPI_ORDERS_WINDOW_DAYS = min(env.int("KASPI_ORDERS_WINDOW_DAYS", default=14), 14)
KASPI_ORDERS_PAGE_SIZE = min(env.int("KASPI_ORDERS_PAGE_SIZE", default=100), 100)
KASPI_ORDERS_MAX_PAGES = env.int("KASPI_ORDERS_MAX_PAGES", default=1000)
ORDERS_SYNC_INTERVAL_MINUTES = env.int("ORDERS_SYNC_INTERVAL_MINUTES", default=30)
# Incremental imports re-read this much before the last fully covered moment.
ORDERS_OVERLAP_HOURS = env.int("ORDERS_OVERLAP_HOURS", default=3)
# How far back the first incremental import looks.
ORDERS_INITIAL_DAYS = env.int("ORDERS_INITIAL_DAYS", default=14)
ORDERS_IMPORT_MAX_AGE_MINUTES = env.int("ORDERS_IMPORT_MAX_AGE_MINUTES", default=90)

# --- Kaspi market and the repricer (docs/kaspi-offers.md) -------------------------------
# The public site (offers, search, card pages). Unset: the scheme and host of
# KASPI_SHOP_API_URL, so a local shop API never sends us to the real kaspi.kz.
_shop_api = urlsplit(KASPI_SHOP_API_URL)
KASPI_PUBLIC_URL = env.str(
    "KASPI_PUBLIC_URL", default=f"{_shop_api.scheme}://{_shop_api.netloc}"
).rstrip("/")
# Our shop in the offers answers (most likely the price list's merchantid, unconfirmed).
KASPI_OFFERS_MERCHANT_ID = env.str("KASPI_OFFERS_MERCHANT_ID", default=KASPI_MERCHANT_ID)
KASPI_HOME_CITY = env.str("KASPI_HOME_CITY", default="750000000")
KASPI_CITIES = env.list("KASPI_CITIES", default=[KASPI_HOME_CITY])
if KASPI_HOME_CITY not in KASPI_CITIES:
    KASPI_CITIES = [KASPI_HOME_CITY, *KASPI_CITIES]
# One request at a time, at least this many seconds apart (the doc: ~20x under the block).
KASPI_OFFERS_MIN_INTERVAL = env.float("KASPI_OFFERS_MIN_INTERVAL", default=2.0)
KASPI_OFFERS_USER_AGENT = env.str(
    "KASPI_OFFERS_USER_AGENT",
    default="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
)
KASPI_OFFERS_MAX_PAGES = env.int("KASPI_OFFERS_MAX_PAGES", default=1)
# Reads per kaspi_market run (the schedule runs every KASPI_MARKET_INTERVAL_MINUTES).
KASPI_MARKET_BATCH = env.int("KASPI_MARKET_BATCH", default=400)
KASPI_MARKET_INTERVAL_MINUTES = env.int("KASPI_MARKET_INTERVAL_MINUTES", default=15)
# Target ages: important (card, city) pairs in the home city, and every other pair.
KASPI_MARKET_HOT_MINUTES = env.int("KASPI_MARKET_HOT_MINUTES", default=60)
KASPI_MARKET_MAX_AGE_MINUTES = env.int("KASPI_MARKET_MAX_AGE_MINUTES", default=24 * 60)
RETENTION_MARKET_DAYS = env.int("RETENTION_MARKET_DAYS", default=30)
# suggest (staff approve) or auto (applied with the next price-list build).
REPRICER_MODE = env.str("REPRICER_MODE", default="suggest")
# Break-even floor: the commission per Kaspi category comes from the admin table (its "*"
# row, else KASPI_COMMISSION_PERCENT, for a category not in it; this picks the with- or
# without-VAT column), the tax is SALES_TAX_PERCENT; our delivery and packaging per unit.
KASPI_COMMISSION_WITH_VAT = env.bool("KASPI_COMMISSION_WITH_VAT", default=True)
KASPI_DELIVERY_COST = env.int("KASPI_DELIVERY_COST", default=0)
KASPI_PACKAGING_COST = env.int("KASPI_PACKAGING_COST", default=0)
# Moves: one per product per feed cycle, a cap per step, raises after a cooldown, a change
# above the anomaly share waits for approval even in auto mode.
REPRICER_FEED_CYCLE_MINUTES = env.int("REPRICER_FEED_CYCLE_MINUTES", default=60)
REPRICER_MAX_STEP_PERCENT = Decimal(env.str("REPRICER_MAX_STEP_PERCENT", default="5"))
REPRICER_RAISE_COOLDOWN_MINUTES = env.int("REPRICER_RAISE_COOLDOWN_MINUTES", default=180)
REPRICER_ANOMALY_SHARE = Decimal(env.str("REPRICER_ANOMALY_SHARE", default="0.2"))
# Market observations older than this are not used for pricing.
REPRICER_MARKET_MAX_AGE_MINUTES = env.int("REPRICER_MARKET_MAX_AGE_MINUTES", default=180)

# --- Fulfilment and staff alerts ---------------------------------------------------------
# Accept new Kaspi orders automatically when every line is in stock and priced above cost.
ORDERS_AUTO_ACCEPT = env.bool("ORDERS_AUTO_ACCEPT", default=False)
# Remind staff of orders not accepted within this many minutes.
ORDERS_ACCEPT_REMINDER_MINUTES = env.int("ORDERS_ACCEPT_REMINDER_MINUTES", default=60)
# The cart API lives on the catalog's host (docs/alstyle-api.md §1): unless set, derived from
# ALSTYLE_API_URL (same scheme and host, path /cart-api/), so the cart never goes to the real
# host with the token while the catalog points at a local one.
ALSTYLE_CART_API_URL = env.str("ALSTYLE_CART_API_URL", default="") or urlunsplit(
    (*urlsplit(ALSTYLE_API_URL)[:2], "/cart-api/", "", "")
)
# The attorney (Доверенности → Номер) and carrier (Транспортники → СпособДоставки or
# Транспортник) a purchase sends when the dealer profile marks none as Основной, or to
# override the marked one. Empty = the one marked Основной.
ALSTYLE_ATTORNEY_NUMBER = env.str("ALSTYLE_ATTORNEY_NUMBER", default="")
ALSTYLE_CARRIER = env.str("ALSTYLE_CARRIER", default="")
# How often the supplier status of open purchases is read from Al-Style's order list.
ALSTYLE_PURCHASE_POLL_MINUTES = env.int("ALSTYLE_PURCHASE_POLL_MINUTES", default=60)
# Open purchases older than this are no longer polled (nor looked up when unknown).
ALSTYLE_PURCHASE_POLL_DAYS = env.int("ALSTYLE_PURCHASE_POLL_DAYS", default=30)
# Days from today for the Al-Style shipping date of a purchase.
ALSTYLE_SHIPPING_DAYS = env.int("ALSTYLE_SHIPPING_DAYS", default=1)
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_CHAT_ID = env.str("TELEGRAM_CHAT_ID", default="")
TELEGRAM_API_URL = env.str("TELEGRAM_API_URL", default="https://api.telegram.org")
# Without Telegram, alerts go by email to these addresses (else to ADMINS).
STAFF_ALERT_EMAILS = env.list("STAFF_ALERT_EMAILS", default=[])
ADMINS = [("Admin", email) for email in env.list("ADMIN_EMAILS", default=[])]
EMAIL_BACKEND = env_or(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backoffice@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ALERT_COOLDOWN_MINUTES = env.int("ALERT_COOLDOWN_MINUTES", default=60)

# --- Retention (manage.py cleanup_data, daily schedule) ------------------------------------
RETENTION_WEBHOOK_DAYS = env.int("RETENTION_WEBHOOK_DAYS", default=90)
RETENTION_RUNS_DAYS = env.int("RETENTION_RUNS_DAYS", default=180)
RETENTION_ALERTS_DAYS = env.int("RETENTION_ALERTS_DAYS", default=180)
RETENTION_CUSTOMER_DAYS = env.int("RETENTION_CUSTOMER_DAYS", default=365)


# --- Kaspi product cards (docs/kaspi-product-import.md) ---------------------------------
def kaspi_content_base_url(shop_url: str) -> str:
    """The content API's base from the orders API's: same scheme and host, `…/shop/api`
    (the orders base without its `/v2`), so card calls never go to the real Kaspi with our
    token while orders point at a test or local host."""
    parts = urlsplit(shop_url.strip())
    path = parts.path.rstrip("/")
    base = path[: -len("/v2")] if path.endswith("/v2") else "/shop/api"
    return f"{parts.scheme}://{parts.netloc}{base or '/shop/api'}"


KASPI_CONTENT_API_URL = env.str("KASPI_CONTENT_API_URL", default="") or kaspi_content_base_url(
    KASPI_SHOP_API_URL
)
# Products per import batch: a few hundred keeps a bad batch cheap; Kaspi's cap is 10,000.
KASPI_CARDS_BATCH = min(env.int("KASPI_CARDS_BATCH", default=200), 10_000)
KASPI_CARDS_POLL_MINUTES = env.int("KASPI_CARDS_POLL_MINUTES", default=5)
# Al-Style element-info call per this many articles when fetching card data.
ALSTYLE_DETAILS_CHUNK = env.int("ALSTYLE_DETAILS_CHUNK", default=25)

# --- Payments (docs/kaspi-qr-payments.md) -----------------------------------------------
# demo (default: QR opens our page with pay/fail buttons), kaspi_qr (Kaspi QR partner
# API), none (off).
PAYMENTS_PROVIDER = env.str("PAYMENTS_PROVIDER", default="demo")
PAYMENTS_ALLOW_DEMO = env.bool("PAYMENTS_ALLOW_DEMO", default=False)
if PAYMENTS_PROVIDER == "demo" and not DEBUG and not PAYMENTS_ALLOW_DEMO:
    raise ImproperlyConfigured(
        "PAYMENTS_PROVIDER=demo lets anyone mark a payment paid with a button, so it is "
        "refused with DEBUG off. Set PAYMENTS_PROVIDER=none to switch payments off, or "
        "PAYMENTS_ALLOW_DEMO=1 for a demo installation."
    )
if PAYMENTS_PROVIDER not in {"demo", "kaspi_qr", "none"}:
    raise ImproperlyConfigured("PAYMENTS_PROVIDER must be demo, kaspi_qr or none.")
PAYMENTS_DEMO_TTL_MINUTES = env.int("PAYMENTS_DEMO_TTL_MINUTES", default=30)


# Kaspi QR partner API, scheme 1 (API key). The test host by default: production hosts
# come from Kaspi with the production key.
def kaspi_qr_base_url(url: str) -> str:
    """The `/rN/v01` base the QR client needs. The docs write the scheme root (`…/r1`), so
    that gets `/v01` added; anything else is refused here, at start-up, in plain words
    (it used to end in an unexplained 404 at the first payment)."""
    base = url.strip().rstrip("/")
    if re.search(r"/r[123]$", base):
        return base + "/v01"
    if re.search(r"/r[123]/v01$", base):
        return base
    raise ImproperlyConfigured(
        f"KASPI_QR_API_URL={url!r} must end in the scheme root /r1, /r2 or /r3 (we add /v01) "
        "or in /rN/v01, e.g. https://mtokentest.kaspi.kz:8543/r1"
    )


KASPI_QR_API_URL = env.str("KASPI_QR_API_URL", default="https://mtokentest.kaspi.kz:8543/r1/v01")
if PAYMENTS_PROVIDER == "kaspi_qr" or re.search(r"/r[123]/?$", KASPI_QR_API_URL.strip()):
    KASPI_QR_API_URL = kaspi_qr_base_url(KASPI_QR_API_URL)
KASPI_QR_API_KEY = env.str("KASPI_QR_API_KEY", default="")
# "qr" shows a QR code (desktop); "link" gives a link that opens the Kaspi app (phones).
KASPI_QR_MODE = env.str("KASPI_QR_MODE", default="qr")
KASPI_QR_DEVICE_ID = env.str("KASPI_QR_DEVICE_ID", default="kaspi-backoffice")
# Refunds need the certificate schemes (2/3); with the API key they are recorded by hand.
KASPI_QR_CERT_FILE = env.str("KASPI_QR_CERT_FILE", default="")
KASPI_QR_KEY_FILE = env.str("KASPI_QR_KEY_FILE", default="")
KASPI_QR_ORGANIZATION_BIN = env.str("KASPI_QR_ORGANIZATION_BIN", default="")
# Used when Kaspi returns no QrPaymentBehaviorOptions (one client's values, unconfirmed).
KASPI_QR_DEFAULT_POLL_SECONDS = env.int("KASPI_QR_DEFAULT_POLL_SECONDS", default=5)
KASPI_QR_DEFAULT_SCAN_TIMEOUT = env.int("KASPI_QR_DEFAULT_SCAN_TIMEOUT", default=180)
KASPI_QR_DEFAULT_CONFIRM_TIMEOUT = env.int("KASPI_QR_DEFAULT_CONFIRM_TIMEOUT", default=65)
PAYMENTS_SWEEP_INTERVAL_MINUTES = env.int("PAYMENTS_SWEEP_INTERVAL_MINUTES", default=5)
# The one poller of open payments works in slices of this many seconds (then hands over to
# a fresh task), and is taken as dead when its heartbeat is older than the stale limit.
PAYMENTS_POLLER_SLICE_SECONDS = env.int("PAYMENTS_POLLER_SLICE_SECONDS", default=60)
PAYMENTS_POLLER_STALE_SECONDS = env.int("PAYMENTS_POLLER_STALE_SECONDS", default=60)
PAYMENTS_WEBHOOK_SECRET = env.str("PAYMENTS_WEBHOOK_SECRET", default="")
PAYMENTS_WEBHOOK_ALLOWED_IPS = env.list("PAYMENTS_WEBHOOK_ALLOWED_IPS", default=[])
PAYMENTS_WEBHOOK_MAX_BYTES = env.int("PAYMENTS_WEBHOOK_MAX_BYTES", default=64 * 1024)
PAYMENTS_IMPORT_MAX_BYTES = env.int("PAYMENTS_IMPORT_MAX_BYTES", default=5 * 1024 * 1024)

# Values that must never reach a log line, a page or an error message.
SECRET_SETTINGS = [
    "SECRET_KEY",
    "ALSTYLE_TOKEN",
    "FEED_AUTH_PASSWORD",
    "KASPI_SHOP_TOKEN",
    "PAYMENTS_WEBHOOK_SECRET",
    "KASPI_QR_API_KEY",
    "TELEGRAM_BOT_TOKEN",
    "EMAIL_HOST_PASSWORD",
]

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FILE = env.str("LOG_FILE", default=str(BASE_DIR / "logs" / "backoffice.log"))
if LOG_FILE:
    Path(LOG_FILE).parent.mkdir(parents=True, exist_ok=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "backoffice.core.logging.SecretMaskingFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_secrets"],
        },
        # WatchedFileHandler reopens the file after logrotate moves it, so the web,
        # worker and cron processes can all append to one file safely.
        **(
            {
                "file": {
                    "class": "logging.handlers.WatchedFileHandler",
                    "filename": LOG_FILE,
                    "formatter": "plain",
                    "filters": ["mask_secrets"],
                    "encoding": "utf-8",
                }
            }
            if LOG_FILE
            else {}
        ),
    },
    "root": {"handlers": ["console", *(["file"] if LOG_FILE else [])], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
    },
}
