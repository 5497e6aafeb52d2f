"""Back up the database to a file: pg_dump (custom format) or SQLite's online backup."""

import os
import sqlite3
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = "Write a consistent backup of the database to PATH (see README: Backup and restore)."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        db = settings.DATABASES["default"]
        if connection.vendor == "sqlite":
            # The online backup API copies a consistent snapshot even while the web process
            # and the worker write (WAL mode).
            source = sqlite3.connect(db["NAME"])
            dest = sqlite3.connect(target)
            with dest:
                source.backup(dest)
            dest.close()
            source.close()
        elif connection.vendor == "postgresql":
            env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
            command = [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--file={target}",
                f"--host={db.get('HOST') or 'localhost'}",
                f"--port={db.get('PORT') or 5432}",
                f"--username={db.get('USER') or 'postgres'}",
                db["NAME"],
            ]
            result = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
            if result.returncode != 0:
                raise CommandError(f"pg_dump failed: {result.stderr.strip()}")
        else:
            raise CommandError(f"no backup method for {connection.vendor}")
        self.stdout.write(f"backup written: {target} ({target.stat().st_size} bytes)")
